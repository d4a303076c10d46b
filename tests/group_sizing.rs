//! Sizing a daemon group to its load: an elastic group (`processes=MIN-MAX`) serves with MIN
//! processes, grows to MAX while every thread is busy and shrinks back after idle-timeout;
//! `queue-limit` answers 503 at once when too many requests wait.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use support::{Apache, ApacheConfig, artifacts, ensure_user, http};

const USER: &str = "rustapp-test-a";

fn start(group_options: &str) -> Apache {
    ensure_user(USER);
    Apache::start(ApacheConfig::new(&format!(
        "LoadModule status_module /usr/lib/apache2/modules/mod_status.so\n\
         <Location /server-status>\n  SetHandler server-status\n</Location>\n\
         RustAppDaemonProcess sized {group_options} user={USER} home=/\n\
         RustAppAlias /g {} process-group=sized",
        artifacts().testapp.display()
    )))
}

/// mod_status's machine-readable page, as `Name: value` pairs.
fn status(apache: &Apache) -> HashMap<String, String> {
    http::get(&apache.url("/server-status?auto"))
        .text()
        .lines()
        .filter_map(|line| line.split_once(": "))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn figure(status: &HashMap<String, String>, key: &str) -> u64 {
    status
        .get(&format!("RustAppGroup.sized.{key}"))
        .unwrap_or_else(|| panic!("{key} missing from {status:#?}"))
        .parse()
        .unwrap()
}

/// Polls the status page until `holds` (at most `limit`); the last page read.
fn wait_for_status(
    apache: &Apache,
    limit: Duration,
    holds: impl Fn(&HashMap<String, String>) -> bool,
) -> HashMap<String, String> {
    let deadline = Instant::now() + limit;
    loop {
        let now = status(apache);
        if holds(&now) {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "{now:#?}\n{}",
            apache.error_log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_elastic_group_grows_to_max_under_load_and_shrinks_to_min_after_idle() {
    let apache = start("processes=1-4 threads=1 idle-timeout=2");
    // One process serves; three wait as spares, their application not loaded.
    let spares = |s: &HashMap<String, String>| s.values().filter(|v| *v == "spare").count();
    wait_for_status(&apache, Duration::from_secs(20), |s| {
        figure(s, "Processes") == 4 && figure(s, "ServingProcesses") == 1 && spares(s) == 3
    });
    assert_eq!(
        apache
            .error_log()
            .matches("testapp starting at '/g'")
            .count(),
        1
    );

    // Six clients, each waiting for its answer before the next request, keep every thread busy.
    let stop = Arc::new(AtomicBool::new(false));
    let (served, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let clients: Vec<_> = (0..6)
        .map(|_| {
            let (stop, served, failed) = (stop.clone(), served.clone(), failed.clone());
            let url = apache.url("/g/sleep?ms=100");
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(90);
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    match http::try_get(&url) {
                        Ok(reply) if reply.status == 200 => served.fetch_add(1, Ordering::Relaxed),
                        _ => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    let grown = wait_for_status(&apache, Duration::from_secs(60), |s| {
        figure(s, "ServingProcesses") == 4
    });
    assert_eq!(figure(&grown, "Processes"), 4);
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().unwrap();
    }
    assert_eq!(failed.load(Ordering::Relaxed), 0);
    assert!(served.load(Ordering::Relaxed) > 0);
    assert!(
        apache
            .error_log()
            .contains("joins its group's 1 serving processes (every thread has been busy)"),
        "{}",
        apache.error_log()
    );

    // Idle: the processes beyond MIN retire after idle-timeout; their replacements are spares.
    // (At least three: one that Apache's threads happened not to reach for 2 s may have retired
    // during the load already, and a spare took its place.)
    let retired_idle = |s: &HashMap<String, String>| {
        s.get("RustAppGroup.sized.Ends")
            .and_then(|ends| ends.strip_prefix("idle-timeout="))
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| n >= 3)
    };
    let shrunk = wait_for_status(&apache, Duration::from_secs(60), |s| {
        figure(s, "ServingProcesses") == 1 && spares(s) == 3 && retired_idle(s)
    });
    assert_eq!(spares(&shrunk), 3, "{shrunk:#?}");
    assert_eq!(http::get(&apache.url("/g/info")).status, 200);
}

#[test]
fn past_queue_limit_requests_are_answered_503_at_once() {
    let apache = start("threads=1 queue-limit=1 queue-timeout=60");
    let slow = |ms: u64| {
        let url = apache.url(&format!("/g/sleep?ms={ms}"));
        std::thread::spawn(move || http::get(&url).status)
    };
    // The one thread runs a request; one more waits for it, which the limit allows.
    let running = slow(3000);
    wait_for_status(&apache, Duration::from_secs(10), |s| {
        figure(s, "BusyThreads") == 1
    });
    let waiting = slow(10);
    wait_for_status(&apache, Duration::from_secs(10), |s| {
        figure(s, "RequestsWaiting") == 1
    });
    // A second waiting one is past it: 503, without waiting for queue-timeout.
    assert_eq!(http::get(&apache.url("/g/info")).status, 503);
    assert!(
        apache.error_log().contains(
            "2 requests wait for daemon group sized, past its queue-limit of 1; answering 503"
        ),
        "{}",
        apache.error_log()
    );
    assert_eq!(running.join().unwrap(), 200);
    assert_eq!(waiting.join().unwrap(), 200);
    let after = status(&apache);
    assert_eq!(figure(&after, "Answered503"), 1);
    assert_eq!(http::get(&apache.url("/g/info")).status, 200);
}
