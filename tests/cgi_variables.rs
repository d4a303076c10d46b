//! The CGI variables an application gets from Apache's own environment, compared with what
//! mod_wsgi gives a WSGI application for the same request, in both modes.

mod support;

use std::collections::HashMap;

use support::http;
use support::{Apache, ApacheConfig, artifacts, ensure_user, shared_temp_dir};

const USER: &str = "rustapp-test-a";

/// The same for every application of a server.
const SHARED: [&str; 7] = [
    "REQUEST_SCHEME",
    "SERVER_SOFTWARE",
    "GATEWAY_INTERFACE",
    "DOCUMENT_ROOT",
    "CONTEXT_PREFIX",
    "CONTEXT_DOCUMENT_ROOT",
    "SERVER_ADMIN",
];

const WSGI_APP: &str = r#"
NAMES = ["REQUEST_SCHEME", "SERVER_SOFTWARE", "GATEWAY_INTERFACE", "DOCUMENT_ROOT",
         "CONTEXT_PREFIX", "CONTEXT_DOCUMENT_ROOT", "SERVER_ADMIN", "SCRIPT_FILENAME"]
def application(environ, start_response):
    body = "".join("var.%s=%s\n" % (n, environ[n]) for n in NAMES if n in environ)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body.encode()]
"#;

/// `var.NAME=value` lines of an answer.
fn vars(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("var."))
        .filter_map(|l| l.split_once('='))
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect()
}

#[test]
fn the_cgi_variables_are_mod_wsgis_in_both_modes() {
    ensure_user(USER);
    let dir = shared_temp_dir();
    let script = dir.path().join("vars.wsgi");
    std::fs::write(&script, WSGI_APP).unwrap();
    let lib = artifacts().testapp.display().to_string();
    let apache = Apache::start(ApacheConfig::new(&format!(
        "LoadModule wsgi_module /usr/lib/apache2/modules/mod_wsgi.so\n\
         ServerAdmin webmaster@example.test\n\
         <Directory {dir}>\n  Require all granted\n</Directory>\n\
         WSGIScriptAlias /w {script}\n\
         RustAppDaemonProcess cgi threads=2 user={USER} home=/\n\
         RustAppAlias /e {lib}\n\
         RustAppAlias /d {lib} process-group=cgi",
        dir = dir.path().display(),
        script = script.display(),
    )));
    let wsgi = vars(&http::get(&apache.url("/w/x")).text());
    assert_eq!(wsgi.len(), 8, "mod_wsgi gave {wsgi:?}");
    for mode in ["/e", "/d"] {
        let ours = vars(&http::get(&apache.url(&format!("{mode}/info"))).text());
        for name in SHARED {
            assert_eq!(ours.get(name), wsgi.get(name), "{mode}: {name}");
        }
        // Each gets its own file: mod_wsgi its script, an application its library.
        assert_eq!(ours.get("SCRIPT_FILENAME"), Some(&lib), "{mode}");
        assert_eq!(
            wsgi.get("SCRIPT_FILENAME").map(String::as_str),
            Some(script.to_str().unwrap())
        );
    }
}
