//! The module works under each of Apache's MPMs: event and worker (threads) and prefork
//! (single-threaded processes), with concurrent clients.

mod support;

use support::http;
use support::{Apache, ApacheConfig, Mpm, artifacts};

fn serves_concurrent_requests_under(mpm: Mpm) {
    let a = artifacts();
    let apache = Apache::start(
        ApacheConfig::new(&format!(
            "RustAppAlias /hello {}\nRustAppAlias /t {}",
            a.hello.display(),
            a.testapp.display()
        ))
        .mpm(mpm),
    );
    let url = apache.url("/hello");
    let clients: Vec<_> = (0..6)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                let agent = http::agent();
                (0..100)
                    .filter(|_| {
                        agent
                            .get(&url)
                            .call()
                            .ok()
                            .and_then(|r| r.into_string().ok())
                            .is_some_and(|body| body == "Hello World!")
                    })
                    .count()
            })
        })
        .collect();
    let answered: usize = clients.into_iter().map(|c| c.join().unwrap()).sum();
    assert_eq!(answered, 600, "under {mpm:?}");

    // A panic still costs only its own request.
    assert_eq!(http::get(&apache.url("/t/panic")).status, 500);
    assert_eq!(http::get(&apache.url("/t/info")).status, 200);
    let log = apache.error_log();
    assert!(
        log.contains(&format!("mpm_{}", format!("{mpm:?}").to_lowercase())),
        "{log}"
    );
    assert!(!log.contains("exit signal"), "{log}");
}

#[test]
fn event_mpm() {
    serves_concurrent_requests_under(Mpm::Event);
}

#[test]
fn worker_mpm() {
    serves_concurrent_requests_under(Mpm::Worker);
}

#[test]
fn prefork_mpm() {
    serves_concurrent_requests_under(Mpm::Prefork);
}
