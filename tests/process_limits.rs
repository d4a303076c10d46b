//! Limits of a daemon group's processes. Those that retire a process gracefully, as
//! maximum-requests does (memory-limit, cpu-time-limit, restart-interval, restart-file): a
//! client keeps asking meanwhile, no request fails while the process is replaced, and the log
//! says which limit it passed. And those that shape the processes: stack-size, cpu-priority,
//! supplementary-groups.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use support::{Apache, ApacheConfig, artifacts, ensure_user, http};

const USER: &str = "rustapp-test-a";

/// An Apache with daemon group `limited` (one process) serving testapp at `/t`.
fn start(options: &str) -> Apache {
    ensure_user(USER);
    Apache::start(ApacheConfig::new(&format!(
        "RustAppDaemonProcess limited threads=4 {options} user={USER} home=/\n\
         RustAppAlias /t {} process-group=limited",
        artifacts().testapp.display()
    )))
}

/// Waits up to 15 s for another process than `old` to answer.
fn replaced(apache: &Apache, old: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if apache.info_pid("/t/info") != old {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// A client asking `/t/info` one request after another until finished.
struct Busy {
    stop: Arc<AtomicBool>,
    client: JoinHandle<(usize, Vec<String>)>,
}

impl Busy {
    fn start(apache: &Apache) -> Busy {
        let (stop, url) = (Arc::new(AtomicBool::new(false)), apache.url("/t/info"));
        let stopping = stop.clone();
        let client = std::thread::spawn(move || {
            let (mut served, mut failures) = (0, Vec::new());
            let deadline = Instant::now() + Duration::from_secs(60);
            while !stopping.load(Ordering::Relaxed) && Instant::now() < deadline {
                let reply = http::get(&url);
                match reply.status {
                    200 => served += 1,
                    status => failures.push(format!("{status}: {}", reply.text())),
                }
            }
            (served, failures)
        });
        Busy { stop, client }
    }

    /// Stops the client: how many requests it made, all answered 200.
    fn served_all(self, apache: &Apache) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        let (served, failures) = self.client.join().unwrap();
        assert!(failures.is_empty(), "{failures:?}\n{}", apache.error_log());
        assert!(served > 0);
        served
    }
}

/// While a client keeps asking, `provoke` (given the serving process) makes it pass a limit:
/// another process serves soon after, the log says `says`, and no request failed.
fn replaced_under_load(apache: &Apache, provoke: impl FnOnce(u32), says: &str) {
    let busy = Busy::start(apache);
    let first = apache.info_pid("/t/info");
    provoke(first);
    assert!(replaced(apache, first), "{}", apache.error_log());
    assert!(
        apache.wait_for_log(says, 1, Duration::from_secs(5)),
        "{says:?} not logged:\n{}",
        apache.error_log()
    );
    busy.served_all(apache);
}

#[test]
fn memory_limit_retires_a_process_that_grows_past_it() {
    let apache = start("memory-limit=128M");
    let leak = |_| {
        for _ in 0..2 {
            assert_eq!(http::get(&apache.url("/t/leak?mib=80")).status, 200);
        }
    };
    replaced_under_load(&apache, leak, "passed memory-limit=128 MiB");
}

#[test]
fn a_memory_limit_a_fresh_process_cannot_meet_is_not_enforced_in_a_loop() {
    let apache = start("memory-limit=1M");
    let first = apache.info_pid("/t/info");
    assert!(
        apache.wait_for_log("memory-limit=1 MiB is below the", 1, Duration::from_secs(5)),
        "{}",
        apache.error_log()
    );
    // Looked at once a second: it went on serving.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(apache.info_pid("/t/info"), first);
    assert!(!apache.error_log().contains("passed memory-limit"));
}

#[test]
fn cpu_time_limit_retires_a_process_that_used_it() {
    let apache = start("cpu-time-limit=1");
    let spin = |_| assert_eq!(http::get(&apache.url("/t/spin?ms=1500")).status, 200);
    replaced_under_load(&apache, spin, "of CPU time serving (cpu-time-limit=1)");
}

#[test]
fn restart_interval_replaces_a_process_that_ran_that_long() {
    let apache = start("restart-interval=2");
    replaced_under_load(&apache, |_| {}, "(restart-interval=2)");
}

#[test]
fn touching_the_restart_file_rolls_the_group() {
    let dir = tempfile::tempdir().unwrap();
    // The daemon's user looks at the file.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let file = dir.path().join("restart.txt");
    std::fs::write(&file, "").unwrap();
    let apache = start(&format!("restart-file={}", file.display()));
    let touch = |first| {
        // Untouched, it keeps serving.
        std::thread::sleep(Duration::from_millis(1500));
        assert_eq!(apache.info_pid("/t/info"), first);
        let later = std::time::SystemTime::now() + Duration::from_secs(1);
        std::fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(later)
            .unwrap();
    };
    let changed = format!("its restart-file {} changed", file.display());
    replaced_under_load(&apache, touch, &changed);
    // The new process takes the new time as its own: it is not replaced again.
    let second = apache.info_pid("/t/info");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(apache.info_pid("/t/info"), second);
}

#[test]
fn stack_size_cpu_priority_and_supplementary_groups_shape_the_processes() {
    let extra = "rustapp-test-extra";
    let added = std::process::Command::new("groupadd")
        .args(["-f", "-r", extra])
        .status()
        .unwrap();
    assert!(added.success());
    let apache = start(&format!(
        "stack-size=32M cpu-priority=7 supplementary-groups={extra}"
    ));
    // 8 MiB deep: four times the default thread stack.
    let deep = http::get(&apache.url("/t/deep?kib=8192"));
    assert_eq!(deep.status, 200, "{}\n{}", deep.text(), apache.error_log());
    assert_eq!(deep.field("depth").as_deref(), Some("8192"));
    let pid = apache.info_pid("/t/info");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The nice value is the 19th field, the 17th after the command's closing parenthesis.
    let nice = stat.rsplit(')').next().unwrap().split_whitespace().nth(16);
    assert_eq!(nice, Some("7"), "{stat}");
    let entry = std::process::Command::new("getent")
        .args(["group", extra])
        .output()
        .unwrap();
    let gid = String::from_utf8(entry.stdout).unwrap();
    let gid = gid.split(':').nth(2).unwrap().to_owned();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let groups = status.lines().find(|l| l.starts_with("Groups:")).unwrap();
    assert!(
        groups.split_whitespace().any(|g| g == gid),
        "{groups} lacks {gid}"
    );
}
