//! Daemon mode through a real Apache started as root: each site's application runs in its own
//! processes, as its own user, with its own environment, and failures there stay there.

mod support;

use std::io::Read;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use support::http::{self, PatternReader};
use support::{Apache, ApacheConfig, artifacts, config_test, ensure_user, memory_kib};

const USER_A: &str = "rustapp-test-a";
const USER_B: &str = "rustapp-test-b";

/// Two virtual hosts, each with its own daemon group, user and environment, plus an embedded
/// application in the main server.
fn two_sites(extra_a: &str) -> Apache {
    ensure_user(USER_A);
    ensure_user(USER_B);
    let lib = artifacts().testapp.display().to_string();
    Apache::start(ApacheConfig::new(&format!(
        "RustAppAlias /embedded {lib}\n\
         <VirtualHost *>\n  ServerName default.test\n  RustAppAlias /embedded {lib}\n</VirtualHost>\n\
         <VirtualHost *>\n  ServerName site-a.test\n\
           RustAppDaemonProcess site-a processes=2 threads=8 user={USER_A} home=/tmp env=SITE=alpha display-name=%{{GROUP}} {extra_a}\n\
           RustAppProcessGroup site-a\n  RustAppSetting WHO site-a\n  RustAppAlias /app {lib}\n</VirtualHost>\n\
         <VirtualHost *>\n  ServerName site-b.test\n\
           RustAppDaemonProcess site-b user={USER_B} home=/ env=SITE=beta\n\
           RustAppAlias /app {lib} process-group=site-b\n</VirtualHost>"
    )))
}

fn info(apache: &Apache, host: &str, path: &str) -> http::Reply {
    let reply = http::get_with(&apache.url(path), &[("Host", host)]);
    assert_eq!(reply.status, 200, "{host}{path}: {}", reply.text());
    reply
}

fn uid_of(name: &str) -> String {
    ensure_user(name).to_string()
}

#[test]
fn each_site_runs_as_its_own_user_with_its_own_environment_and_processes() {
    let apache = two_sites("");
    let a = info(&apache, "site-a.test", "/app/info");
    let b = info(&apache, "site-b.test", "/app/info");
    let embedded = info(&apache, "default.test", "/embedded/info");

    assert_eq!(a.field("uid"), Some(uid_of(USER_A)));
    assert_eq!(b.field("uid"), Some(uid_of(USER_B)));
    assert_eq!(
        embedded.field("uid").as_deref(),
        Some("33"),
        "embedded apps run as Apache's user"
    );
    assert_eq!(
        (a.field("env.SITE").as_deref(), a.field("cwd").as_deref()),
        (Some("alpha"), Some("/tmp"))
    );
    assert_eq!(
        (b.field("env.SITE").as_deref(), b.field("cwd").as_deref()),
        (Some("beta"), Some("/"))
    );
    assert_eq!(embedded.field("env.SITE").as_deref(), Some("(unset)"));
    let pids = [a.field("pid"), b.field("pid"), embedded.field("pid")];
    assert!(
        pids[0] != pids[1] && pids[1] != pids[2] && pids[0] != pids[2],
        "{pids:?}"
    );
    // What the application sees of the request is the same as when embedded.
    assert_eq!(a.field("script_name").as_deref(), Some("/app"));
    // Settings reach a daemon's application exactly as an embedded one's.
    assert_eq!(a.field("setting.WHO").as_deref(), Some("site-a"));
    assert_eq!(a.field("path_info").as_deref(), Some("/info"));
    assert_eq!(a.field("var.REMOTE_ADDR").as_deref(), Some("127.0.0.1"));
    // `ps` shows the group's display name.
    let pid = a.field("pid").unwrap();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(
        cmdline.starts_with(b"(rustapp:site-a)"),
        "{}",
        String::from_utf8_lossy(&cmdline)
    );
    // Neither daemon can read the other's (or Apache's) environment from /proc.
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    assert!(
        !environ.windows(5).any(|w| w == b"PATH="),
        "the inherited environment is still visible"
    );
}

#[test]
fn an_app_that_kills_its_process_costs_one_502_and_a_new_process_serves_the_next() {
    let apache = two_sites("");
    let before = info(&apache, "site-b.test", "/app/info").field("pid");
    let crashed = http::get_with(&apache.url("/app/abort"), &[("Host", "site-b.test")]);
    assert_eq!(crashed.status, 502);
    let after = info(&apache, "site-b.test", "/app/info").field("pid");
    assert_ne!(before, after, "the same process answered after aborting");
    assert!(
        apache.wait_for_log(
            "was killed by signal 6; started process",
            1,
            Duration::from_secs(5)
        ),
        "{}",
        apache.error_log()
    );
    assert!(
        apache
            .error_log()
            .lines()
            .any(|l| l.contains("daemon group 'site-b' (process ")
                && l.contains("closed the connection before answering"))
    );
    // The other site never noticed.
    info(&apache, "site-a.test", "/app/info");
}

#[test]
fn a_daemon_killed_under_load_is_replaced_and_service_goes_on() {
    let apache = two_sites("");
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let url = apache.url("/app/info");
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (stop, served, url) = (stop.clone(), served.clone(), url.clone());
            std::thread::spawn(move || {
                let deadline = std::time::Instant::now() + Duration::from_secs(60);
                while !stop.load(Ordering::Relaxed) && std::time::Instant::now() < deadline {
                    if http::agent()
                        .get(&url)
                        .set("Host", "site-a.test")
                        .call()
                        .is_ok()
                    {
                        served.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let victim = info(&apache, "site-a.test", "/app/info")
        .field("pid")
        .unwrap();
    assert!(
        Command::new("kill")
            .args(["-9", &victim])
            .status()
            .unwrap()
            .success()
    );
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    assert!(
        served.load(Ordering::Relaxed) > 100,
        "only {} served",
        served.load(Ordering::Relaxed)
    );
    // After the kill, every request is answered.
    for _ in 0..50 {
        let reply = info(&apache, "site-a.test", "/app/info");
        assert_ne!(reply.field("pid").as_deref(), Some(victim.as_str()));
    }
    assert!(
        apache.wait_for_log(
            &format!("process {victim} was killed by signal 9"),
            1,
            Duration::from_secs(5)
        ),
        "{}",
        apache.error_log()
    );
}

fn socket_of(apache: &Apache, group: &str) -> String {
    let log = apache.error_log();
    let marker = format!("daemon group '{group}' started process ");
    log.lines()
        .filter(|l| l.contains(&marker))
        .find_map(|l| l.split("listening on ").nth(1))
        .expect("the socket is logged")
        .trim()
        .to_owned()
}

#[test]
fn only_apache_can_talk_to_a_daemon() {
    let apache = two_sites("");
    let socket = socket_of(&apache, "site-b");
    // A `Hello` frame speaking this protocol version, with a token of zeros.
    let version = rustapp_daemon_protocol::PROTOCOL_VERSION.to_le_bytes();
    let hello = format!("[1,0,0,0,34,0,0,0,{},{}]+[0]*32", version[0], version[1]);
    let connect = |user: &str, group: &str| {
        Command::new("setpriv")
            .args([&format!("--reuid={user}"), &format!("--regid={group}"), "--clear-groups", "/usr/bin/python3", "-c"])
            .arg(format!("import socket,sys\ns=socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])\ns.sendall(bytes({hello}))\nprint(len(s.recv(64)))"))
            .arg(&socket)
            .output()
            .unwrap()
    };
    let other = connect("nobody", "nogroup");
    assert!(!other.status.success());
    assert!(
        String::from_utf8_lossy(&other.stderr).contains("Permission denied"),
        "{other:?}"
    );
    // Apache's own user can connect, but without this Apache's token it is sent away.
    let forged = connect("www-data", "www-data");
    assert_eq!(
        String::from_utf8_lossy(&forged.stdout).trim(),
        "0",
        "{forged:?}"
    );
    assert!(apache.wait_for_log(
        "refused a connection that did not present this Apache's token",
        1,
        Duration::from_secs(5)
    ));
    info(&apache, "site-b.test", "/app/info");
}

#[test]
fn bodies_of_64_mib_stream_both_ways_with_bounded_memory() {
    let apache = Apache::start(
        ApacheConfig::new(&format!(
            "RustAppDaemonProcess big user={} home=/\nRustAppAlias /t {} process-group=big",
            {
                ensure_user(USER_A);
                USER_A
            },
            artifacts().testapp.display()
        ))
        .processes(1),
    );
    let daemon = http::get(&apache.url("/t/info"))
        .field("pid")
        .unwrap()
        .parse::<u32>()
        .unwrap();
    let child = apache
        .child_pids()
        .into_iter()
        .find(|&p| p != daemon)
        .unwrap();
    let (daemon_before, _) = memory_kib(daemon);
    let (child_before, _) = memory_kib(child);
    let size: u64 = 64 << 20;
    let up = http::post_chunked(
        &apache.url("/t/upload-digest"),
        PatternReader {
            offset: 0,
            len: size,
        },
    );
    assert_eq!(up.field("length"), Some(size.to_string()));
    // Spooled whole (the default), handed to the daemon as a file, read there intact.
    let checksum = (0..size).fold(0u64, |s, offset| {
        s.wrapping_mul(31)
            .wrapping_add(u64::from(http::pattern_byte(offset)))
    });
    assert_eq!(up.field("checksum"), Some(checksum.to_string()));
    let mut down = http::agent()
        .get(&apache.url("/t/stream?mib=64"))
        .call()
        .unwrap()
        .into_reader();
    let (mut got, mut buf, mut offset_ok) = (0u64, vec![0u8; 1 << 20], true);
    loop {
        let n = down.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        offset_ok &= buf[..n]
            .iter()
            .enumerate()
            .all(|(i, &b)| b == http::pattern_byte(got + i as u64));
        got += n as u64;
    }
    assert!(offset_ok && got == size, "{got} bytes");
    for (what, pid, before) in [
        ("daemon", daemon, daemon_before),
        ("Apache child", child, child_before),
    ] {
        let (_, peak) = memory_kib(pid);
        assert!(
            peak < before + 24 * 1024,
            "{what} peak {peak} KiB vs {before} KiB before"
        );
    }
}

#[test]
fn restrict_embedded_refuses_apps_without_a_group() {
    ensure_user(USER_A);
    let lib = artifacts().testapp.display().to_string();
    let apache = Apache::start(ApacheConfig::new(&format!(
        "RustAppRestrictEmbedded On\nRustAppDaemonProcess g user={USER_A} home=/\n\
         RustAppAlias /inside {lib}\nRustAppAlias /daemon {lib} process-group=g"
    )));
    assert_eq!(http::get(&apache.url("/inside/info")).status, 500);
    assert!(
        apache
            .error_log()
            .contains("RustAppRestrictEmbedded On forbids running it inside Apache")
    );
    assert_eq!(http::get(&apache.url("/daemon/info")).status, 200);
}

#[test]
fn daemon_configuration_errors_fail_the_configuration_test() {
    let lib = artifacts().testapp.display().to_string();
    let cases = [
        (format!("RustAppAlias /x {lib} process-group=nowhere"), "names process-group=nowhere, which no RustAppDaemonProcess defines"),
        ("RustAppDaemonProcess g processes=0".to_owned(), "option 'processes=0': '0' is not a whole number from 1 to 1000"),
        ("RustAppDaemonProcess g user=root".to_owned(), "never run as root"),
        ("RustAppDaemonProcess g startup-timeout=never".to_owned(), "option 'startup-timeout=never': 'never' is not a whole number"),
        ("RustAppDaemonProcess g maximum-requests=none".to_owned(), "option 'maximum-requests=none': 'none' is not a whole number"),
        ("RustAppSlowRequestLog soon".to_owned(), "RustAppSlowRequestLog: 'soon' is not Off or a number of seconds above 0"),
        ("RustAppDaemonProcess g memory-limit=10X".to_owned(), "option 'memory-limit=10X': '10X' is not a size from 1M to 1024G (bytes, or a number with K, M or G)"),
        (
            "RustAppDaemonProcess g\n<VirtualHost *>\n ServerName v.test\n RustAppDaemonProcess g\n</VirtualHost>".to_owned(),
            "is already defined at",
        ),
        ("RustAppSocketPrefix /no/such/dir".to_owned(), "RustAppSocketPrefix: /no/such/dir is not a directory"),
    ];
    for (directives, expected) in cases {
        let test = config_test(&ApacheConfig::new(&directives));
        assert!(!test.ok, "apache2 -t passed for:\n{directives}");
        assert!(
            test.output.contains(expected),
            "for:\n{directives}\nexpected {expected:?} in:\n{}",
            test.output
        );
    }
}

/// Sends requests from four clients (one of them POSTing bodies when `posts`) while `during`
/// runs and then until `until` holds (at most a minute); returns how many were answered and
/// what failed (anything but a complete 200).
fn under_load(
    apache: &Apache,
    posts: bool,
    during: impl FnOnce(),
    until: impl Fn() -> bool,
) -> (usize, Vec<String>) {
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..4)
        .map(|n| {
            let (stop, served, failures) = (stop.clone(), served.clone(), failures.clone());
            let (info, upload) = (apache.url("/t/info"), apache.url("/t/upload-digest"));
            std::thread::spawn(move || {
                let agent = http::agent();
                let deadline = std::time::Instant::now() + Duration::from_secs(60);
                while !stop.load(Ordering::Relaxed) && std::time::Instant::now() < deadline {
                    // One client posts bodies: a request resent after a Goodbye still has its body.
                    let outcome = if n == 0 && posts {
                        agent
                            .post(&upload)
                            .send_bytes(&[7u8; 65536])
                            .map_err(|e| e.to_string())
                            .and_then(|r| r.into_string().map_err(|e| e.to_string()))
                            .and_then(|body| {
                                if body.starts_with("length=65536") {
                                    Ok(())
                                } else {
                                    Err(body)
                                }
                            })
                    } else {
                        agent
                            .get(&info)
                            .call()
                            .map_err(|e| e.to_string())
                            .and_then(|r| {
                                let mut body = String::new();
                                r.into_reader()
                                    .read_to_string(&mut body)
                                    .map_err(|e| e.to_string())
                                    .map(|_| body)
                            })
                            .and_then(|body| {
                                if body.contains("script_name=/t") {
                                    Ok(())
                                } else {
                                    Err(body)
                                }
                            })
                    };
                    match outcome {
                        Ok(()) => {
                            served.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => failures.lock().unwrap().push(e),
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    during();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !until() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().unwrap();
    }
    let failures = failures.lock().unwrap().clone();
    (served.load(Ordering::Relaxed), failures)
}

fn daemon_pids_in_log(apache: &Apache, group: &str) -> usize {
    let marker = format!("daemon group '{group}' process ");
    let mut pids: Vec<&str> = Vec::new();
    let log = apache.error_log();
    for line in log
        .lines()
        .filter(|l| l.contains(&marker) && l.contains(" serving as "))
    {
        if let Some(pid) = line
            .split(&marker)
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
        {
            if !pids.contains(&pid) {
                pids.push(pid);
            }
        }
    }
    pids.len()
}

#[test]
fn maximum_requests_recycles_processes_under_load_without_a_failed_request() {
    ensure_user(USER_A);
    let apache = Apache::start(ApacheConfig::new(&format!(
        "RustAppDaemonProcess rec processes=2 threads=8 maximum-requests=40 user={USER_A} home=/\n\
         RustAppAlias /t {} process-group=rec",
        artifacts().testapp.display()
    )));
    // Until the group's processes have been replaced three times.
    let (served, failures) = under_load(
        &apache,
        true,
        || {},
        || daemon_pids_in_log(&apache, "rec") >= 5,
    );
    let answered: Vec<String> = apache
        .error_log()
        .lines()
        .filter(|l| l.contains("answering"))
        .map(str::to_owned)
        .collect();
    assert!(
        failures.is_empty(),
        "{} failed of {}: {:?}\n{answered:#?}",
        failures.len(),
        served + failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(served > 200, "only {served} served");
    assert!(
        apache.error_log().matches("(maximum-requests=40)").count() >= 3,
        "{}",
        apache.error_log()
    );
    assert!(
        daemon_pids_in_log(&apache, "rec") >= 5,
        "{}",
        apache.error_log()
    );
}

/// A copy of testapp in `dir`, for a test that replaces it.
fn installed_testapp(dir: &std::path::Path) -> std::path::PathBuf {
    let library = dir.join("libsite.so");
    std::fs::copy(&artifacts().testapp, &library).unwrap();
    library
}

/// A deployment: a new copy of the library is written beside it and renamed over it.
fn deploy(library: &std::path::Path) {
    let staged = library.with_extension("so.new");
    std::fs::copy(&artifacts().testapp, &staged).unwrap();
    std::fs::rename(&staged, library).unwrap();
}

#[test]
fn replacing_the_library_file_recycles_processes_without_a_failed_request() {
    ensure_user(USER_A);
    let dir = support::shared_temp_dir();
    let library = installed_testapp(dir.path());
    let apache = Apache::start(ApacheConfig::new(&format!(
        "RustAppDaemonProcess site processes=2 threads=8 user={USER_A} home=/\n\
         RustAppAlias /t {} process-group=site",
        library.display()
    )));
    let before = http::get(&apache.url("/t/info")).field("pid");
    // Until both processes have been replaced.
    let (served, failures) = under_load(
        &apache,
        true,
        || deploy(&library),
        || daemon_pids_in_log(&apache, "site") >= 4,
    );
    assert!(
        failures.is_empty(),
        "{} failed of {}: {:?}",
        failures.len(),
        served + failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(
        apache.error_log().contains(&format!(
            "its application library {} was replaced",
            library.display()
        )),
        "{}",
        apache.error_log()
    );
    let after = http::get(&apache.url("/t/info")).field("pid");
    assert_ne!(before, after);
}

/// The 99th percentile of `latencies`, in milliseconds.
fn p99_ms(latencies: &mut [Duration]) -> f64 {
    latencies.sort();
    let at = (latencies.len() * 99 / 100).min(latencies.len().saturating_sub(1));
    latencies.get(at).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

#[test]
fn a_library_replacement_rolls_through_the_group_one_process_at_a_time() {
    ensure_user(USER_A);
    let dir = support::shared_temp_dir();
    let library = installed_testapp(dir.path());
    // Applications that take half a second to start: a group that replaced all its processes
    // at once would have none ready for that long.
    let apache = Apache::start(ApacheConfig::new(&format!(
        "RustAppDaemonProcess roll processes=3 threads=4 user={USER_A} home=/\n\
         RustAppAlias /t {} process-group=roll setting=START_DELAY_MS=500",
        library.display()
    )));
    let serving = "daemon group 'roll' process ";
    assert!(apache.wait_for_log(" serving as ", 3, Duration::from_secs(10)));
    // One client, one request after another: when each was sent, how long it took, and how it
    // ended.
    let stop = Arc::new(AtomicBool::new(false));
    let client = {
        let (stop, url) = (stop.clone(), apache.url("/t/info"));
        std::thread::spawn(move || {
            let mut log = Vec::new();
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            while !stop.load(Ordering::Relaxed) && std::time::Instant::now() < deadline {
                let sent = std::time::Instant::now();
                let status = http::get(&url).status;
                log.push((sent, sent.elapsed(), status));
            }
            log
        })
    };
    std::thread::sleep(Duration::from_secs(1));
    let replaced_at = std::time::Instant::now();
    deploy(&library);
    // All three replaced.
    assert!(
        apache.wait_for_log(" serving as ", 6, Duration::from_secs(30)),
        "{}",
        apache.error_log()
    );
    let rolled_at = std::time::Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    let requests = client.join().unwrap();

    // In the log, each retirement is followed by a replacement serving before the next one.
    let log = apache.error_log();
    let mut retired_unreplaced = 0;
    let mut retirements = 0;
    for line in log.lines() {
        if line.contains(" retires: its application library") {
            assert_eq!(
                retired_unreplaced, 0,
                "two processes retired at once:\n{log}"
            );
            retired_unreplaced += 1;
            retirements += 1;
        } else if line.contains(serving) && line.contains(" serving as ") && retired_unreplaced > 0
        {
            retired_unreplaced -= 1;
        }
    }
    assert_eq!(retirements, 3, "{log}");
    let failed: Vec<_> = requests
        .iter()
        .filter(|(_, _, status)| *status != 200)
        .collect();
    assert!(failed.is_empty(), "{} failed: {failed:?}", failed.len());
    let mut phases = [Vec::new(), Vec::new(), Vec::new()];
    for (sent, took, _) in &requests {
        let phase = if *sent < replaced_at {
            0
        } else if *sent < rolled_at {
            1
        } else {
            2
        };
        phases[phase].push(*took);
    }
    let [before, during, after] = phases.map(|mut p| (p.len(), p99_ms(&mut p)));
    println!(
        "library replacement, one client: p99 {:.1} ms before ({} requests), {:.1} ms during ({}), {:.1} ms after ({})",
        before.1, before.0, during.1, during.0, after.1, after.0
    );
    assert!(during.0 > 0 && after.0 > 0);
}

#[test]
fn a_turn_held_by_a_replacement_that_does_not_start_is_waited_for_no_longer_than_graceful_timeout()
{
    ensure_user(USER_A);
    let dir = support::shared_temp_dir();
    let library = installed_testapp(dir.path());
    let delay = dir.path().join("start-delay-ms");
    let apache = Apache::start(ApacheConfig::new(&format!(
        "RustAppDaemonProcess stuck processes=2 threads=2 graceful-timeout=2 user={USER_A} home=/\n\
         RustAppAlias /t {} process-group=stuck setting=START_DELAY_FILE={}",
        library.display(),
        delay.display()
    )));
    assert!(apache.wait_for_log(" serving as ", 2, Duration::from_secs(10)));
    // From now on a process takes a minute to start: the first replacement holds the turn.
    std::fs::write(&delay, "60000").unwrap();
    deploy(&library);
    assert!(
        apache.wait_for_log(
            "did not get its group's turn to retire within graceful-timeout (2 s)",
            1,
            Duration::from_secs(15)
        ),
        "{}",
        apache.error_log()
    );
    assert_eq!(
        apache
            .error_log()
            .matches(" retires: its application library")
            .count(),
        2,
        "{}",
        apache.error_log()
    );
}

#[test]
fn inactivity_timeout_replaces_an_idle_process() {
    ensure_user(USER_A);
    let apache = Apache::start(ApacheConfig::new(&format!(
        "RustAppDaemonProcess idle inactivity-timeout=1 user={USER_A} home=/\n\
         RustAppAlias /t {} process-group=idle",
        artifacts().testapp.display()
    )));
    let before = http::get(&apache.url("/t/info")).field("pid");
    assert!(
        apache.wait_for_log(
            "no request for 1 s (inactivity-timeout)",
            1,
            Duration::from_secs(10)
        ),
        "{}",
        apache.error_log()
    );
    std::thread::sleep(Duration::from_millis(1500));
    let after = http::get(&apache.url("/t/info")).field("pid");
    assert_ne!(before, after, "the idle process was not replaced");
}

#[test]
fn graceful_restarts_under_load_hand_daemons_over_without_a_failed_request() {
    ensure_user(USER_A);
    let apache = Apache::start(ApacheConfig::new(&format!(
        "RustAppDaemonProcess gr processes=2 threads=8 user={USER_A} home=/\n\
         RustAppAlias /t {} process-group=gr",
        artifacts().testapp.display()
    )));
    let first = http::get(&apache.url("/t/info")).field("pid");
    // GETs only: a client may send a POST on a keep-alive connection that Apache's own old
    // children close during a graceful restart, which is Apache's behaviour, not the daemons'.
    let (served, failures) = under_load(
        &apache,
        false,
        || {
            for restart in 1..=5 {
                apache.graceful();
                assert!(apache.wait_for_log(
                    "resuming normal operations",
                    restart + 1,
                    Duration::from_secs(20)
                ));
                std::thread::sleep(Duration::from_millis(300));
            }
        },
        || {
            // Until the last generation's two processes serve.
            daemon_pids_in_log(&apache, "gr") >= 12
        },
    );
    assert!(
        failures.is_empty(),
        "{} failed of {}: {:?}",
        failures.len(),
        served + failures.len(),
        &failures[..failures.len().min(5)]
    );
    let log = apache.error_log();
    assert!(
        log.matches("retired: Apache is restarting").count() >= 8,
        "{log}"
    );
    assert!(
        !log.contains("signal 11") && !log.contains("answering 50"),
        "{log}"
    );
    assert_ne!(http::get(&apache.url("/t/info")).field("pid"), first);
    // Only the current generation's daemons are left.
    std::thread::sleep(Duration::from_secs(2));
    let daemons = apache
        .child_pids()
        .into_iter()
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/status")).is_ok_and(|s| {
                String::from_utf8_lossy(&s)
                    .lines()
                    .any(|l| l.starts_with("Uid:") && l.contains(&uid_of(USER_A)))
            })
        })
        .count();
    assert_eq!(daemons, 2, "{log}");
}

#[test]
fn a_request_past_request_timeout_is_a_504_and_its_process_is_replaced() {
    ensure_user(USER_A);
    let apache = Apache::start(ApacheConfig::new(&format!(
        "RustAppDaemonProcess slow threads=2 request-timeout=1 user={USER_A} home=/\n\
         RustAppAlias /t {} process-group=slow",
        artifacts().testapp.display()
    )));
    let before = http::get(&apache.url("/t/info")).field("pid");
    let started = std::time::Instant::now();
    assert_eq!(http::get(&apache.url("/t/sleep?ms=5000")).status, 504);
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "the 504 took {:?}",
        started.elapsed()
    );
    assert!(
        apache.wait_for_log("past its request-timeout of 1 s", 2, Duration::from_secs(5)),
        "{}",
        apache.error_log()
    );
    std::thread::sleep(Duration::from_millis(1500));
    let after = http::get(&apache.url("/t/info"));
    assert_eq!(after.status, 200);
    assert_ne!(
        after.field("pid"),
        before,
        "the stuck process was not replaced"
    );
}

#[test]
fn a_request_waiting_past_queue_timeout_is_a_503() {
    ensure_user(USER_A);
    let apache = Apache::start(ApacheConfig::new(&format!(
        "RustAppDaemonProcess busy threads=1 queue-timeout=1 user={USER_A} home=/\n\
         RustAppAlias /t {} process-group=busy",
        artifacts().testapp.display()
    )));
    let slow = apache.url("/t/sleep?ms=2500");
    let occupant = std::thread::spawn(move || http::get(&slow).status);
    std::thread::sleep(Duration::from_millis(300));
    // The only thread is busy for 2.5 s: this request waits in the queue past 1 s.
    assert_eq!(http::get(&apache.url("/t/info")).status, 503);
    assert_eq!(occupant.join().unwrap(), 200);
    assert!(
        apache
            .error_log()
            .contains("past the group's queue-timeout of 1 s"),
        "{}",
        apache.error_log()
    );
    assert_eq!(http::get(&apache.url("/t/info")).status, 200);
}

#[test]
fn an_application_slower_to_start_than_startup_timeout_costs_its_process() {
    ensure_user(USER_A);
    let apache = Apache::start(ApacheConfig::new(&format!(
        "RustAppDaemonProcess slowstart startup-timeout=1 user={USER_A} home=/\n\
         RustAppAlias /t {} process-group=slowstart setting=START_DELAY_MS=4000",
        artifacts().testapp.display()
    )));
    assert!(
        apache.wait_for_log(
            "did not start its applications within its startup-timeout of 1 s",
            1,
            Duration::from_secs(10)
        ),
        "{}",
        apache.error_log()
    );
    assert!(apache.wait_for_log(
        "daemon group 'slowstart' process",
        3,
        Duration::from_secs(10)
    ));
}

/// System users often have no home directory (`useradd --system` gives /nonexistent): a group
/// without `home=` then works in `/` instead of failing to start.
#[test]
fn a_user_without_a_home_directory_serves_from_the_root_directory() {
    ensure_user(USER_A);
    let apache = Apache::start(ApacheConfig::new(&format!(
        "RustAppDaemonProcess homeless user={USER_A}\nRustAppAlias /app {} process-group=homeless",
        artifacts().testapp.display()
    )));
    let reply = info(&apache, "localhost", "/app/info");
    assert_eq!(reply.field("cwd").as_deref(), Some("/"));
    assert_eq!(reply.field("uid"), Some(uid_of(USER_A)));
    assert!(
        apache
            .error_log()
            .contains("the home directory /nonexistent of rustapp-test-a cannot be entered"),
        "{}",
        apache.error_log()
    );
}
