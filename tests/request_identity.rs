//! Following one request through the logs: a request slower than `RustAppSlowRequestLog` is
//! logged once, with its URL, where it ran (daemon group and process, or embedded) and how
//! long it took; with mod_unique_id loaded, a daemon's log lines for a request carry that
//! request's id (`%L`), as Apache's own logs do.

mod support;

use support::{Apache, ApacheConfig, artifacts, ensure_user, http};

const USER: &str = "rustapp-test-a";

fn start() -> Apache {
    ensure_user(USER);
    let lib = artifacts().testapp.display().to_string();
    Apache::start(ApacheConfig::new(&format!(
        "LoadModule unique_id_module /usr/lib/apache2/modules/mod_unique_id.so\n\
         ErrorLogFormat \"[%l] [id %L] %M\"\n\
         CustomLog \"ids.log\" \"%L %r\"\n\
         RustAppDaemonProcess traced threads=2 user={USER} home=/\n\
         RustAppAlias /d {lib} process-group=traced\n\
         RustAppAlias /e {lib}\n\
         RustAppAlias /q {lib} process-group=traced\n\
         RustAppSlowRequestLog 0.5\n\
         <Location /q>\n  RustAppSlowRequestLog Off\n</Location>"
    )))
}

/// The slow-request lines of the error log.
fn slow_lines(apache: &Apache) -> Vec<String> {
    apache
        .error_log()
        .lines()
        .filter(|line| line.contains("slow request: "))
        .map(str::to_owned)
        .collect()
}

/// The milliseconds a slow-request line says the request took.
fn took_ms(line: &str) -> u64 {
    let after = line.split(" took ").nth(1).expect("a duration");
    after.split(" ms").next().unwrap().parse().unwrap()
}

#[test]
fn a_slow_request_is_logged_once_with_its_url_where_it_ran_and_how_long() {
    let apache = start();
    let daemon = apache.info_pid("/d/info");
    assert_eq!(http::get(&apache.url("/d/sleep?ms=800")).status, 200);
    assert_eq!(http::get(&apache.url("/e/sleep?ms=800")).status, 200);
    // Quick, and slow where it is turned off: not logged.
    assert_eq!(http::get(&apache.url("/d/sleep?ms=10")).status, 200);
    assert_eq!(http::get(&apache.url("/q/sleep?ms=800")).status, 200);
    // Logged when the response has gone out, before the next request is read.
    assert_eq!(http::get(&apache.url("/d/info")).status, 200);
    let lines = slow_lines(&apache);
    assert_eq!(lines.len(), 2, "{lines:#?}");
    let daemon_line = lines
        .iter()
        .find(|l| l.contains("GET /d/sleep?ms=800 "))
        .expect("the daemon request");
    assert!(
        daemon_line.contains(&format!("in daemon group 'traced' process {daemon} ")),
        "{daemon_line}"
    );
    assert!(took_ms(daemon_line) >= 800, "{daemon_line}");
    let embedded_line = lines
        .iter()
        .find(|l| l.contains("GET /e/sleep?ms=800 "))
        .expect("the embedded request");
    assert!(
        embedded_line.contains(", embedded in Apache process "),
        "{embedded_line}"
    );
    assert!(took_ms(embedded_line) >= 800, "{embedded_line}");
}

#[test]
fn a_daemons_log_line_for_a_request_carries_the_requests_unique_id() {
    let apache = start();
    assert_eq!(http::get(&apache.url("/d/log?msg=follow-me")).status, 200);
    // The access log is written once the request is over.
    assert_eq!(http::get(&apache.url("/d/info")).status, 200);
    let ids = std::fs::read_to_string(apache.dir().join("ids.log")).unwrap();
    let id = ids
        .lines()
        .find(|l| l.ends_with("GET /d/log?msg=follow-me HTTP/1.1"))
        .and_then(|l| l.split(' ').next())
        .expect("the request's line")
        .to_owned();
    assert!(id.len() >= 20 && id != "-", "{ids}");
    let log = apache.error_log();
    let line = log
        .lines()
        .find(|l| l.contains("follow-me"))
        .expect("the application's line");
    assert!(line.contains(&format!("[id {id}]")), "{id} not in {line}");
}
