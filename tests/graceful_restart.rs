//! `apachectl graceful` (what logrotate runs) replaces Apache's children while requests are in
//! flight: twenty of them in a row lose no request and kill no child on a signal.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use support::http;
use support::{Apache, ApacheConfig, artifacts};

const RESTARTS: usize = 20;

#[test]
fn twenty_graceful_restarts_under_load_lose_nothing() {
    let a = artifacts();
    let apache = Apache::start(ApacheConfig::new(&format!(
        "RustAppAlias /hello {}\nRustAppAlias /t {}",
        a.hello.display(),
        a.testapp.display()
    )));
    let stop = Arc::new(AtomicBool::new(false));
    let (served, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
    let clients: Vec<_> = ["/hello", "/hello", "/t/stream?mib=1", "/t/info"]
        .into_iter()
        .map(|path| {
            let url = apache.url(path);
            let (stop, served, failed, failures) = (
                stop.clone(),
                served.clone(),
                failed.clone(),
                failures.clone(),
            );
            std::thread::spawn(move || {
                let agent = http::agent();
                let deadline = Instant::now() + Duration::from_secs(120);
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    let outcome = agent
                        .get(&url)
                        .call()
                        .map_err(|e| e.to_string())
                        .and_then(|r| {
                            let status = r.status();
                            std::io::copy(&mut r.into_reader(), &mut std::io::sink())
                                .map_err(|e| format!("body cut short: {e}"))?;
                            if status == 200 {
                                Ok(())
                            } else {
                                Err(format!("status {status}"))
                            }
                        });
                    match outcome {
                        Ok(()) => {
                            served.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(what) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            failures.lock().unwrap().push(format!("{url}: {what}"));
                        }
                    }
                }
            })
        })
        .collect();

    let generation_line = "resuming normal operations";
    for restart in 1..=RESTARTS {
        apache.graceful();
        assert!(
            apache.wait_for_log(generation_line, restart + 1, Duration::from_secs(20)),
            "restart {restart} did not complete:\n{}",
            apache.error_log()
        );
        std::thread::sleep(Duration::from_millis(150));
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().unwrap();
    }

    let log = apache.error_log();
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "failed requests: {:?}",
        failures.lock().unwrap()
    );
    assert!(
        served.load(Ordering::Relaxed) > 200,
        "only {} requests served",
        served.load(Ordering::Relaxed)
    );
    assert!(
        !log.contains("exit signal"),
        "a child died on a signal:\n{log}"
    );
    assert!(!log.contains("panicked"), "{log}");
    // After all that, a fresh request is still served by the current generation.
    assert_eq!(http::get(&apache.url("/hello")).text(), "Hello World!");
}
