//! Application libraries are checked when loaded: a missing file fails `apache2 -t`; a library
//! that is not an application, or was built for another ABI, is refused with a log line naming
//! its path and the reason, and only its own URLs fail. Apps in C use sdk/include/rustapp.h.

mod support;

use std::time::Duration;

use support::http;
use support::{Apache, ApacheConfig, artifacts, build_c_library, config_test, shared_temp_dir};

#[test]
fn a_c_application_built_against_the_header_is_served() {
    let libs = shared_temp_dir();
    let lib = build_c_library("hello", libs.path());
    let apache = Apache::start(ApacheConfig::new(&format!(
        "RustAppAlias /c {} setting=GREETING=Bonjour",
        lib.display()
    )));
    let reply = http::get(&apache.url("/c"));
    assert_eq!((reply.status, reply.text().as_str()), (200, "Bonjour"));
    assert_eq!(reply.header("Content-Type"), Some("text/plain"));
    assert!(apache.error_log().contains("c-hello created"));
}

/// ABI 1.5's `set_body`: a body handed over whole during `handle` is what the client gets, in
/// both modes, and one larger than the host takes that way is refused (the application then
/// gives its body as usual).
#[test]
fn a_c_application_hands_a_small_body_over_whole() {
    let libs = shared_temp_dir();
    let lib = build_c_library("hello", libs.path());
    let apache = Apache::start(ApacheConfig::new(&format!(
        "RustAppDaemonProcess whole processes=1 threads=2\n\
         RustAppAlias /c {lib} setting=GREETING=Bonjour\n\
         RustAppAlias /d {lib} setting=GREETING=Salut process-group=whole",
        lib = lib.display()
    )));
    for (url, greeting) in [("/c/whole", "Bonjour"), ("/d/whole", "Salut")] {
        for method in ["GET", "HEAD"] {
            let reply = http::request(method, &apache.url(url));
            assert_eq!(reply.status, 200, "{method} {url}");
            assert_eq!(reply.header("Content-Type"), Some("text/plain"));
            let expected = format!("too large: refused; {greeting}");
            let body = if method == "HEAD" { "" } else { &expected };
            assert_eq!(reply.text(), body, "{method} {url}");
        }
    }
}

#[test]
fn a_missing_library_fails_the_configuration_test_naming_the_path() {
    let test = config_test(&ApacheConfig::new(
        "RustAppAlias /x /no/such/dir/libmissing.so",
    ));
    assert!(!test.ok, "apache2 -t passed:\n{}", test.output);
    assert!(
        test.output.contains("/no/such/dir/libmissing.so"),
        "{}",
        test.output
    );
    assert!(
        test.output.contains("No such file or directory"),
        "{}",
        test.output
    );
}

#[test]
fn bad_directive_arguments_fail_the_configuration_test_saying_what_is_allowed() {
    let lib = artifacts().hello.display().to_string();
    let cases = [
        (
            format!("RustAppAlias /x {lib} processes=2"),
            "unknown option 'processes=2'; allowed: setting=NAME=VALUE",
        ),
        (format!("RustAppAlias x {lib}"), "must start with '/'"),
        (
            "RustAppAlias /x".to_owned(),
            "RustAppAlias takes a URL path and an application library",
        ),
        (
            format!("RustAppAlias /x {lib}\nRustAppAlias /x/ {lib}"),
            "already defined",
        ),
        (
            "RustAppSetting \"A B\" value".to_owned(),
            "setting name 'A B'",
        ),
        (
            "<Location /x>\n RustAppPassAuthorization maybe\n</Location>".to_owned(),
            "RustAppPassAuthorization",
        ),
    ];
    for (directives, expected) in cases {
        let test = config_test(&ApacheConfig::new(&directives));
        assert!(!test.ok, "apache2 -t passed for:\n{directives}");
        assert!(
            test.output.contains(expected),
            "for:\n{directives}\nexpected {expected:?} in:\n{}",
            test.output
        );
    }
    assert!(
        config_test(&ApacheConfig::new(&format!(
            "RustAppAlias /x {lib} setting=A=1"
        )))
        .ok
    );
}

#[test]
fn unusable_libraries_are_refused_with_path_and_reason_and_others_keep_serving() {
    let a = artifacts();
    let libs = shared_temp_dir();
    let wrong_abi = build_c_library("wrong_abi", libs.path());
    let no_entry = build_c_library("no_entry", libs.path());
    let junk = libs.path().join("libjunk.so");
    std::fs::write(&junk, "this is not an ELF file\n").unwrap();

    let apache = Apache::start(ApacheConfig::new(&format!(
        "RustAppAlias /wrong-abi {}\nRustAppAlias /no-entry {}\nRustAppAlias /junk {}\n\
         RustAppAlias /fails-to-start {} setting=FAIL_TO_START=1\nRustAppAlias /hello {}",
        wrong_abi.display(),
        no_entry.display(),
        junk.display(),
        a.testapp.display(),
        a.hello.display()
    )));
    for path in ["/wrong-abi", "/no-entry", "/junk", "/fails-to-start"] {
        assert_eq!(http::get(&apache.url(path)).status, 500, "{path}");
    }
    assert_eq!(http::get(&apache.url("/hello")).text(), "Hello World!");

    assert!(apache.wait_for_log("FAIL_TO_START is set", 1, Duration::from_secs(5)));
    let log = apache.error_log();
    let speaks = format!(
        "built for application ABI 99.3, but this mod_rustapp speaks ABI {}.{}",
        rustapp::abi::ABI_MAJOR,
        rustapp::abi::ABI_MINOR
    );
    let expectations = [
        (wrong_abi.display().to_string(), speaks.as_str()),
        (
            no_entry.display().to_string(),
            "does not export the `rustapp_app` entry point",
        ),
        (junk.display().to_string(), "is not a loadable library"),
    ];
    for (path, reason) in expectations {
        assert!(
            log.lines().any(|l| l.contains(&path) && l.contains(reason)),
            "no line naming {path} with {reason:?}:\n{log}"
        );
    }
    assert!(
        log.contains("application failed to start: FAIL_TO_START is set"),
        "{log}"
    );
    assert!(!log.contains("exit signal"), "{log}");
}
