//! A real browser: headless Chromium opens the example site's live page, whose `EventSource`
//! follows server-sent events through Apache, in both modes; after `apachectl graceful` the
//! streams end cleanly and the browser reconnects by itself and keeps receiving. And the
//! example's chat page, opened in two browsers, exchanges messages over WebSockets through
//! Apache, in both modes, over HTTP/1.1 and over h2 with TLS.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{Apache, ApacheConfig, artifacts, ensure_user};

const USER: &str = "rustapp-test-a";

/// A headless Chromium showing `url` until dropped.
struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn open(url: &str) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let child = Command::new("chromium")
            .args(["--headless=new", "--no-sandbox", "--disable-gpu"])
            .args([
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--remote-debugging-port=0",
                // The tests' own self-signed certificate.
                "--ignore-certificate-errors",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run chromium (Debian's chromium package)");
        Browser {
            child,
            _profile: profile,
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How many times the browser reported `data` for the page under `mount`.
fn seen(apache: &Apache, mount: &str, data: &str) -> usize {
    let needle = format!("GET {mount}/live/seen?");
    let data = format!("data={} HTTP", data.replace(' ', "%20"));
    apache
        .access_log()
        .lines()
        .filter(|l| l.contains(&needle) && l.contains(&data))
        .count()
}

fn wait_until(what: &str, apache: &Apache, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within 30 s\n{}\n{}",
            apache.access_log(),
            apache.error_log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_browser_follows_events_in_both_modes_and_reconnects_after_a_graceful_restart() {
    ensure_user(USER);
    let lib = artifacts().axum_site.display().to_string();
    let apache = Apache::start(ApacheConfig::new(&format!(
        "RustAppDaemonProcess live threads=2 user={USER} home=/\n\
         RustAppAlias /e {lib}\n\
         RustAppAlias /d {lib} process-group=live"
    )));
    let _browsers: Vec<Browser> = ["/e", "/d"]
        .iter()
        .map(|mount| Browser::open(&apache.url(&format!("{mount}/live"))))
        .collect();
    for mount in ["/e", "/d"] {
        wait_until(&format!("{mount}: three events"), &apache, || {
            seen(&apache, mount, "event 2") >= 1
        });
    }
    apache.graceful();
    // Each stream ended (the first event of a new stream is event 0 again) and the browser
    // kept receiving on the new one.
    for mount in ["/e", "/d"] {
        wait_until(
            &format!("{mount}: a reconnect after the restart"),
            &apache,
            || seen(&apache, mount, "event 2") >= 2,
        );
        assert!(seen(&apache, mount, "event 0") >= 2);
    }
    let log = apache.error_log();
    assert!(!log.contains("aborted"), "{log}");
}

/// Whether the chat page named `by` reported a message that `from` sent: its hello, or its
/// answer to `by`'s hello. The page's report is logged by the application as it arrives
/// (over HTTP/2 an access-log line can wait until mod_http2 tidies the stream away).
fn heard(apache: &Apache, by: &str, from: &str) -> bool {
    let log = apache.error_log();
    [
        format!("chat: \"{by}\" received \"hello from {from}\""),
        format!("chat: \"{by}\" received \"{from} answers {by}\""),
    ]
    .iter()
    .any(|line| log.contains(line.as_str()))
}

#[test]
fn two_browsers_chat_over_websockets_in_both_modes_over_http1_and_h2_with_tls() {
    ensure_user(USER);
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = support::certificate(dir.path());
    let (cert, key) = (cert.display(), key.display());
    let tls_port = support::free_port();
    let lib = artifacts().axum_site.display().to_string();
    // One Apache child and one daemon process: each holds one chat room.
    let apache = Apache::start(
        ApacheConfig::new(&format!(
            "LoadModule ssl_module /usr/lib/apache2/modules/mod_ssl.so\n\
             LoadModule http2_module /usr/lib/apache2/modules/mod_http2.so\n\
             RustAppDaemonProcess chat threads=2 user={USER} home=/\n\
             RustAppAlias /e {lib}\n\
             RustAppAlias /d {lib} process-group=chat\n\
             Listen 127.0.0.1:{tls_port}\n\
             <VirtualHost 127.0.0.1:{tls_port}>\n  ServerName 127.0.0.1\n  Protocols h2 http/1.1\n\
               H2WebSockets on\n  SSLEngine on\n  SSLCertificateFile {cert}\n  SSLCertificateKeyFile {key}\n\
             </VirtualHost>"
        ))
        .processes(1),
    );
    let tls_base = format!("https://127.0.0.1:{tls_port}");
    let plain_base = apache.url("");
    let plain_base = plain_base.trim_end_matches('/');
    for (protocol, base) in [("h1", plain_base), ("h2", tls_base.as_str())] {
        for mode in ["e", "d"] {
            let (a, b) = (
                format!("{mode}{protocol}Ann"),
                format!("{mode}{protocol}Bob"),
            );
            let _first = Browser::open(&format!("{base}/{mode}/chat?name={a}"));
            // Ann is in the room (she heard her own hello) before Bob comes.
            wait_until(&format!("{a} joins"), &apache, || heard(&apache, &a, &a));
            let _second = Browser::open(&format!("{base}/{mode}/chat?name={b}"));
            wait_until(&format!("{a} and {b} hear each other"), &apache, || {
                heard(&apache, &a, &b) && heard(&apache, &b, &a)
            });
        }
    }
    // Over TLS the browser used WebSockets over HTTP/2 (RFC 8441). A tunnel is logged once
    // it closed, which the browsers' going away makes happen.
    for mode in ["e", "d"] {
        for protocol in ["HTTP/2.0", "HTTP/1.1"] {
            let line = format!("\"GET /{mode}/chat/ws {protocol}\" 101");
            wait_until(&format!("{line} in the access log"), &apache, || {
                apache.access_log().contains(&line)
            });
        }
    }
}
