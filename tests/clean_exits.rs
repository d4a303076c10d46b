//! A daemon process runs its applications' clean-up (their `Drop`, through the ABI's
//! `destroy`) after its last request, as an Apache child does in embedded mode: when it
//! recycles (maximum-requests), on a graceful restart, when Apache stops, and when Apache's
//! parent dies without stopping. testapp's `Drop` leaves `dropped.PID` in the directory its
//! `DROP_MARKER` setting names.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use support::{Apache, ApacheConfig, artifacts, ensure_user, http};

const USER: &str = "rustapp-test-a";

/// Whether process `pid` left its marker within 10 s.
fn dropped(markers: &Path, pid: u32) -> bool {
    let marker = markers.join(format!("dropped.{pid}"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !marker.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    marker.exists() && std::fs::read_to_string(&marker).unwrap() == "/t"
}

/// An Apache serving testapp at `/t` from daemon group `group` (with `options`), run as
/// `USER`, and the directory its `Drop` leaves markers in.
fn serving_with_markers(group: &str, options: &str) -> (Apache, tempfile::TempDir) {
    ensure_user(USER);
    let markers = tempfile::tempdir().unwrap();
    // The daemon's own user writes the markers.
    std::fs::set_permissions(markers.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let apache = Apache::start(ApacheConfig::new(&format!(
        "RustAppDaemonProcess {group} threads=2 {options} user={USER} home=/\n\
         RustAppAlias /t {} process-group={group} setting=DROP_MARKER={}",
        artifacts().testapp.display(),
        markers.path().display()
    )));
    (apache, markers)
}

#[test]
fn a_daemon_runs_its_applications_drop_on_recycle_graceful_restart_and_stop() {
    let (apache, markers) = serving_with_markers("clean", "maximum-requests=5");

    // maximum-requests: the fifth request retires the process that served it.
    let recycled = apache.info_pid("/t/info");
    for _ in 0..4 {
        assert_eq!(http::get(&apache.url("/t/info")).status, 200);
    }
    assert!(
        dropped(markers.path(), recycled),
        "no clean-up by the recycled process {recycled}\n{}",
        apache.error_log()
    );

    // A graceful restart retires the daemons of the old generation.
    let restarted = apache.info_pid("/t/info");
    assert_ne!(restarted, recycled);
    apache.graceful();
    assert!(
        dropped(markers.path(), restarted),
        "no clean-up by process {restarted} on a graceful restart\n{}",
        apache.error_log()
    );

    // Stopping Apache stops its daemons, which clean up first.
    let stopped = apache.info_pid("/t/info");
    assert_ne!(stopped, restarted);
    let log = apache.error_log();
    drop(apache);
    assert!(
        dropped(markers.path(), stopped),
        "no clean-up by process {stopped} when Apache stopped\n{log}"
    );
}

/// Whether process `pid` ended within `timeout` (a zombie no one reaped yet has ended).
fn ends_within(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| {
                stat.rsplit(')')
                    .next()?
                    .split_whitespace()
                    .next()
                    .map(str::to_owned)
            });
        if state.is_none_or(|state| state == "Z") {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn daemons_stop_and_clean_up_when_their_apache_parent_is_killed() {
    let (apache, markers) = serving_with_markers("orphaned", "shutdown-timeout=2");
    let daemon = apache.info_pid("/t/info");
    // Taken before the parent dies: its children then belong to no one.
    let children = apache.child_pids();
    assert!(children.contains(&daemon));

    // Killed, the parent runs nothing: no cleanup of its own can stop the daemons.
    // SAFETY: signalling the Apache parent this test started.
    unsafe { libc::kill(apache.parent_pid() as i32, libc::SIGKILL) };
    let cleaned_up = dropped(markers.path(), daemon);
    let ended = ends_within(daemon, Duration::from_secs(10));
    let log = apache.error_log();
    // Apache's own children outlive a killed parent; they are this test's to end.
    for pid in children {
        // SAFETY: signalling processes of the Apache this test started.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }
    assert!(
        cleaned_up,
        "daemon {daemon} did not retire when its Apache parent was killed\n{log}"
    );
    assert!(ended, "daemon {daemon} outlived its Apache parent\n{log}");
}
