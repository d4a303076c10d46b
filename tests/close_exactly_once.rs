//! Whatever an application returns for a request is finished exactly once: after the last
//! byte, after an error, when Apache refuses the head, and when the client goes away midway.
//! The test app logs `close-token=TOKEN` when a response body is dropped; each test counts them.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use support::http;
use support::{Apache, ApacheConfig, artifacts};

fn start() -> Apache {
    Apache::start(ApacheConfig::new(&format!(
        "RustAppAlias /t {}",
        artifacts().testapp.display()
    )))
}

/// Waits for the token's close line, then a little longer to catch a second one.
fn assert_closed_once(apache: &Apache, token: &str) {
    let line = format!("close-token={token}\n");
    let line = line.trim_end();
    assert!(
        apache.wait_for_log(line, 1, Duration::from_secs(20)),
        "{token} was never closed:\n{}",
        apache.error_log()
    );
    std::thread::sleep(Duration::from_millis(300));
    let closes = apache
        .error_log()
        .lines()
        .filter(|l| l.ends_with(line))
        .count();
    assert_eq!(closes, 1, "{token} closed {closes} times");
}

#[test]
fn a_body_sent_to_the_end_is_closed_once() {
    let apache = start();
    let reply = http::get(&apache.url("/t/close/complete"));
    assert_eq!((reply.status, reply.body.len()), (200, 3 * 1024));
    assert_closed_once(&apache, "complete");
}

#[test]
fn a_body_that_fails_midway_is_closed_once() {
    let apache = start();
    let _ = http::try_get(&apache.url("/t/close/failed?mode=fail"));
    assert_closed_once(&apache, "failed");
}

#[test]
fn a_body_whose_head_apache_refuses_is_closed_once() {
    let apache = start();
    assert_eq!(
        http::get(&apache.url("/t/close/refused?bad-header=1")).status,
        500
    );
    assert_closed_once(&apache, "refused");
}

#[test]
fn a_body_abandoned_by_the_client_is_closed_once() {
    let apache = start();
    let mut stream = TcpStream::connect(("127.0.0.1", apache.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"GET /t/close/abandoned?mode=slow HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    // Read the head and some of the (1 GiB) body, then hang up.
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = 0;
    while got < buf.len() {
        match stream.read(&mut buf[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    assert!(got > 64 * 1024, "only {got} bytes arrived");
    drop(stream);
    assert_closed_once(&apache, "abandoned");
    assert_eq!(http::get(&apache.url("/t/info")).status, 200);
}
