//! A failing application costs one request a 5xx and a log line; the Apache child keeps
//! serving. Nothing the application sends can split or falsely complete a response.

mod support;

use support::http;
use support::{Apache, ApacheConfig, artifacts};

fn start_one_child() -> Apache {
    let a = artifacts();
    Apache::start(
        ApacheConfig::new(&format!("RustAppAlias /t {}", a.testapp.display())).processes(1),
    )
}

#[test]
fn a_panic_is_a_500_for_that_request_and_the_child_keeps_serving() {
    let apache = start_one_child();
    let children = apache.child_pids();
    for _ in 0..3 {
        assert_eq!(http::get(&apache.url("/t/panic")).status, 500);
        assert_eq!(http::get(&apache.url("/t/info")).status, 200);
    }
    assert_eq!(apache.child_pids(), children, "a child was replaced");
    let log = apache.error_log();
    assert!(
        log.contains("application panicked at examples/testapp/src/lib.rs"),
        "{log}"
    );
    assert!(log.contains("the test asked for a panic"), "{log}");
    assert!(!log.contains("exit signal"), "{log}");
}

/// A panic in a closure the host calls back (a header visitor) crosses the host's code: it
/// must come back to the application's side as a failed request, never abort the process.
#[test]
fn a_panic_inside_a_header_visitor_is_a_500_in_either_mode_and_nothing_is_replaced() {
    let a = artifacts();
    let lib = a.testapp.display();
    let apache = Apache::start(
        ApacheConfig::new(&format!(
            "RustAppDaemonProcess visitors threads=2\n\
             RustAppAlias /t {lib}\n\
             RustAppAlias /d {lib} process-group=visitors"
        ))
        .processes(1),
    );
    assert_eq!(http::get(&apache.url("/d/info")).status, 200);
    let processes = apache.child_pids();
    for mount in ["/t", "/d"] {
        for _ in 0..3 {
            let panicked = http::get(&apache.url(&format!("{mount}/panic-in-header-visitor")));
            assert_eq!(panicked.status, 500, "{mount}");
            assert_eq!(http::get(&apache.url(&format!("{mount}/info"))).status, 200);
        }
    }
    assert_eq!(apache.child_pids(), processes, "a process was replaced");
    let log = apache.error_log();
    assert_eq!(
        log.matches("the test asked for a panic in a visitor")
            .count(),
        6,
        "{log}"
    );
    assert!(
        !log.contains("exit signal") && !log.contains("signal 6"),
        "{log}"
    );
}

#[test]
fn an_error_is_a_500_with_its_message_logged() {
    let apache = start_one_child();
    assert_eq!(http::get(&apache.url("/t/error")).status, 500);
    assert!(
        apache
            .error_log()
            .contains("request failed: the test asked for an error")
    );
    assert_eq!(http::get(&apache.url("/t/info")).status, 200);
}

#[test]
fn a_header_with_cr_lf_or_an_invalid_status_is_a_500_never_a_split_response() {
    let apache = start_one_child();
    let raw = http::raw_exchange(
        apache.port,
        "GET /t/bad-header HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    let raw = String::from_utf8_lossy(&raw);
    assert!(raw.starts_with("HTTP/1.1 500"), "{raw}");
    assert!(!raw.contains("Injected"), "{raw}");
    assert!(!raw.contains("never sent"), "{raw}");
    assert_eq!(http::get(&apache.url("/t/bad-status")).status, 500);
    let log = apache.error_log();
    assert!(
        log.contains("header X-Split has a value with a forbidden control byte 0x0d"),
        "{log}"
    );
    assert!(
        log.contains("status 1000 is not a valid final HTTP status"),
        "{log}"
    );
}

#[test]
fn a_body_that_breaks_off_reaches_the_client_as_incomplete() {
    let apache = start_one_child();
    // Chunked: no final zero-length chunk after the failure.
    let raw = http::raw_exchange(
        apache.port,
        "GET /t/close/broken?mode=fail HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    );
    let raw = String::from_utf8_lossy(&raw);
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    assert!(raw.contains("Transfer-Encoding: chunked"), "{raw}");
    assert!(
        !raw.ends_with("0\r\n\r\n"),
        "the broken body ended cleanly:\n{raw}"
    );

    // Before anything was sent, the failure is a plain 500.
    assert_eq!(
        http::get(&apache.url("/t/close/early?mode=fail-early")).status,
        500
    );

    // Declared length: the connection closes short of it.
    let raw = http::raw_exchange(
        apache.port,
        "GET /t/short-body HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    );
    let text = String::from_utf8_lossy(&raw);
    let body_len = text.split("\r\n\r\n").nth(1).map_or(0, str::len);
    assert!(text.contains("Content-Length: 100"), "{text}");
    assert!(body_len < 100, "{text}");
    assert!(
        apache
            .error_log()
            .contains("ended its body after 10 of the 100 bytes")
    );
}
