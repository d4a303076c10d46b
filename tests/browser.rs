//! A real browser: headless Chromium opens the example site's live page, whose `EventSource`
//! follows server-sent events through Apache, in both modes; after `apachectl graceful` the
//! streams end cleanly and the browser reconnects by itself and keeps receiving.

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
