//! With the plain SDK, middleware is an application wrapping another: one that adds a header,
//! and one that hands a URL prefix to a second application (examples/composed).

mod support;

use support::http;
use support::{Apache, ApacheConfig, artifacts};

#[test]
fn a_prefix_goes_to_the_inner_app_as_its_mount_point_and_the_wrapper_adds_its_header() {
    let apache = Apache::start(ApacheConfig::new(&format!(
        "RustAppAlias /c {} setting=POWERED_BY=composed-test",
        artifacts().composed.display()
    )));

    let api = http::get(&apache.url("/c/api/users/7"));
    assert_eq!(api.text(), "api: script_name=/c/api path_info=/users/7");
    assert_eq!(api.header("X-Powered-By"), Some("composed-test"));

    assert_eq!(
        http::get(&apache.url("/c/api")).text(),
        "api: script_name=/c/api path_info="
    );

    let page = http::get(&apache.url("/c/apix"));
    assert_eq!(page.text(), "<h1>page /apix</h1>");
    assert_eq!(
        page.header("Content-Type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(page.header("X-Powered-By"), Some("composed-test"));
}
