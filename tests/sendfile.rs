//! File handoff: an application answers `X-Sendfile: PATH` and Apache sends the file itself,
//! with ranges, ETag and conditional requests; only under `RustAppSendfileRoot` (the file's
//! real path, links followed), refused with a log line elsewhere. From a daemon group the
//! daemon opens the file with its own rights, so its user may serve what Apache's cannot read.

mod support;

use std::os::unix::fs::{PermissionsExt, symlink};

use support::http;
use support::{Apache, ApacheConfig, artifacts, ensure_user, shared_temp_dir};

const USER: &str = "rustapp-test-a";

#[test]
fn apache_sends_named_files_under_the_root_and_refuses_others_in_both_modes() {
    let uid = ensure_user(USER);
    let dir = shared_temp_dir();
    let root = dir.path().join("files");
    std::fs::create_dir(&root).unwrap();
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
    let content: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let public = root.join("public.bin");
    std::fs::write(&public, &content).unwrap();
    std::fs::set_permissions(&public, std::fs::Permissions::from_mode(0o644)).unwrap();
    // Readable by the daemon's user alone.
    let private = root.join("private.txt");
    std::fs::write(&private, b"for the daemon's eyes").unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(&private, Some(uid), None).unwrap();
    // Inside the root by name, outside it really.
    symlink("/etc/hostname", root.join("escape")).unwrap();

    let lib = artifacts().testapp.display().to_string();
    let apache = Apache::start(ApacheConfig::new(&format!(
        "RustAppDaemonProcess files threads=2 user={USER} home=/\n\
         RustAppAlias /e {lib}\nRustAppAlias /d {lib} process-group=files\n\
         RustAppAlias /none {lib}\n\
         <LocationMatch \"^/(e|d)/\">\n  RustAppSendfileRoot {root}\n</LocationMatch>",
        root = root.display()
    )));
    let url = |mount: &str, path: &std::path::Path| {
        apache.url(&format!("{mount}/sendfile?path={}", path.display()))
    };
    for mode in ["/e", "/d"] {
        let whole = http::get(&url(mode, &public));
        assert_eq!(whole.status, 200, "{mode}: {}", whole.text());
        assert_eq!(whole.body, content, "{mode}");
        assert_eq!(whole.header("Accept-Ranges"), Some("bytes"), "{mode}");
        assert!(whole.header("Last-Modified").is_some(), "{mode}");
        assert!(
            whole.header("X-Sendfile").is_none(),
            "{mode}: the path is not shown"
        );
        let etag = whole.header("ETag").expect("an ETag").to_owned();

        let part = http::get_with(&url(mode, &public), &[("Range", "bytes=10-19")]);
        assert_eq!(
            (part.status, &part.body[..]),
            (206, &content[10..20]),
            "{mode}"
        );
        let cached = http::get_with(&url(mode, &public), &[("If-None-Match", &etag)]);
        assert_eq!(cached.status, 304, "{mode}");

        let missing = http::get(&url(mode, &root.join("missing")));
        assert_eq!(missing.status, 404, "{mode}");
        for outside in [
            std::path::PathBuf::from("/etc/hostname"),
            root.join("escape"),
        ] {
            let refused = http::get(&url(mode, &outside));
            assert_eq!(refused.status, 500, "{mode}: {}", outside.display());
        }
    }
    // The daemon's user reads what Apache's cannot; embedded, Apache's user is refused.
    let private_d = http::get(&url("/d", &private));
    assert_eq!(
        (private_d.status, private_d.text().as_str()),
        (200, "for the daemon's eyes")
    );
    assert_eq!(http::get(&url("/e", &private)).status, 500);
    // Where no RustAppSendfileRoot covers the URL, nothing is handed off.
    assert_eq!(http::get(&url("/none", &public)).status, 500);
    let log = apache.error_log();
    assert!(log.contains("outside RustAppSendfileRoot"), "{log}");
    assert!(
        log.contains("no RustAppSendfileRoot covers this URL"),
        "{log}"
    );
}
