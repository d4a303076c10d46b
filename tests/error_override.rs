//! `RustAppErrorOverride On`: Apache's error handling (`ErrorDocument`) replaces an
//! application's 4xx and 5xx bodies, as `ProxyErrorOverride` does, in both modes; without it,
//! and for other statuses, the application's answer goes out as it is.

mod support;

use support::http;
use support::{Apache, ApacheConfig, artifacts, ensure_user};

const USER: &str = "rustapp-test-a";

#[test]
fn apache_error_documents_replace_application_error_bodies_where_asked() {
    ensure_user(USER);
    let lib = artifacts().testapp.display().to_string();
    let apache = Apache::start(ApacheConfig::new(&format!(
        "ErrorDocument 404 \"custom not found\"\n\
         ErrorDocument 503 \"custom unavailable\"\n\
         RustAppDaemonProcess errors threads=2 user={USER} home=/\n\
         RustAppAlias /e {lib}\nRustAppAlias /d {lib} process-group=errors\n\
         RustAppAlias /plain-e {lib}\nRustAppAlias /plain-d {lib} process-group=errors\n\
         <LocationMatch \"^/(e|d)/\">\n  RustAppErrorOverride On\n</LocationMatch>"
    )));
    for mode in ["e", "d"] {
        for (code, page) in [(404, "custom not found"), (503, "custom unavailable")] {
            let replaced = http::get(&apache.url(&format!("/{mode}/status?code={code}")));
            assert_eq!(
                (replaced.status, replaced.text().trim()),
                (code, page),
                "{mode}"
            );
            let own = http::get(&apache.url(&format!("/plain-{mode}/status?code={code}")));
            assert_eq!(
                (own.status, own.text().as_str()),
                (code, "status body"),
                "{mode}"
            );
        }
        let fine = http::get(&apache.url(&format!("/{mode}/status?code=201")));
        assert_eq!(
            (fine.status, fine.text().as_str()),
            (201, "status body"),
            "{mode}"
        );
    }
    // The daemon's connections stay usable after a body was dropped unread.
    for _ in 0..5 {
        assert_eq!(http::get(&apache.url("/d/status?code=404")).status, 404);
        assert_eq!(http::get(&apache.url("/d/status")).text(), "status body");
    }
}
