//! An application mounted with RustAppAlias answers requests in Apache's own processes and sees
//! the request as Apache received it.

mod support;

use support::http::{self, PatternReader, checksum};
use support::{Apache, ApacheConfig, artifacts};

#[test]
fn hello_answers_with_its_body_below_its_mount_point_only() {
    let a = artifacts();
    let apache = Apache::start(ApacheConfig::new(&format!(
        "RustAppAlias /hello {}",
        a.hello.display()
    )));

    let reply = http::get(&apache.url("/hello"));
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), "Hello World!");
    assert_eq!(reply.header("Content-Type"), Some("text/plain"));

    assert_eq!(
        http::get(&apache.url("/hello/any/path")).text(),
        "Hello World!"
    );
    // A name that merely starts like the mount point is not the application's.
    assert_eq!(http::get(&apache.url("/helloworld")).status, 404);
}

#[test]
fn the_app_sees_method_uri_paths_query_headers_and_variables() {
    let a = artifacts();
    let apache = Apache::start(ApacheConfig::new(&format!(
        "SetEnv MY_VAR from-setenv\nRustAppAlias /t {}",
        a.testapp.display()
    )));

    let reply = http::get_with(
        &apache.url("/t/info/a%20b?x=1%202&y"),
        &[
            ("X-Test", "abc"),
            ("Authorization", "Basic c2VjcmV0OnNlY3JldA=="),
        ],
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let field = |name: &str| {
        reply
            .field(name)
            .unwrap_or_else(|| panic!("no {name} in:\n{}", reply.text()))
    };
    assert_eq!(field("method"), "GET");
    assert_eq!(field("uri"), "/t/info/a%20b?x=1%202&y");
    assert_eq!(field("protocol"), "HTTP/1.1");
    assert_eq!(field("script_name"), "/t");
    assert_eq!(field("path_info"), "/info/a b");
    assert_eq!(field("query"), "x=1%202&y");
    assert_eq!(field("header.x-test"), "abc");
    assert_eq!(field("lookup.x-test"), "abc");
    assert_eq!(field("var.REMOTE_ADDR"), "127.0.0.1");
    assert_eq!(field("var.SERVER_PORT"), apache.port.to_string());
    assert_eq!(field("var.SCRIPT_NAME"), "/t");
    assert_eq!(field("var.PATH_INFO"), "/info/a b");
    assert_eq!(field("lookup.MY_VAR"), "from-setenv");
    assert_eq!(field("var.MY_VAR"), "from-setenv");
    // Credentials are Apache's business unless RustAppPassAuthorization says otherwise.
    assert_eq!(field("lookup.authorization"), "(none)");
    assert!(
        reply.field("header.authorization").is_none(),
        "{}",
        reply.text()
    );
}

#[test]
fn authorization_reaches_the_app_only_where_configured() {
    let a = artifacts();
    let apache = Apache::start(ApacheConfig::new(&format!(
        "RustAppAlias /t {}\n<Location /t/info/open>\n  RustAppPassAuthorization On\n</Location>",
        a.testapp.display()
    )));
    let credentials = [("Authorization", "Bearer token-123")];
    let open = http::get_with(&apache.url("/t/info/open"), &credentials);
    assert_eq!(
        open.field("lookup.authorization").as_deref(),
        Some("Bearer token-123")
    );
    assert_eq!(
        open.field("header.authorization").as_deref(),
        Some("Bearer token-123")
    );
    let closed = http::get_with(&apache.url("/t/info/closed"), &credentials);
    assert_eq!(
        closed.field("lookup.authorization").as_deref(),
        Some("(none)")
    );
}

#[test]
fn two_aliases_of_one_library_are_two_instances_with_their_own_settings() {
    let a = artifacts();
    let lib = a.testapp.display();
    let apache = Apache::start(
        ApacheConfig::new(&format!(
            "RustAppSetting SHARED from-server\nRustAppSetting WHO server\n\
             RustAppAlias /a {lib} setting=WHO=a\n\
             RustAppAlias /b {lib} setting=WHO=b setting=SHARED=b-own"
        ))
        .processes(1),
    );
    let ra = http::get(&apache.url("/a/info"));
    let rb = http::get(&apache.url("/b/info"));
    assert_eq!(ra.field("setting.WHO").as_deref(), Some("a"));
    assert_eq!(ra.field("setting.SHARED").as_deref(), Some("from-server"));
    assert_eq!(ra.field("mount_point").as_deref(), Some("/a"));
    assert_eq!(rb.field("setting.WHO").as_deref(), Some("b"));
    assert_eq!(rb.field("setting.SHARED").as_deref(), Some("b-own"));
    assert_eq!(rb.field("mount_point").as_deref(), Some("/b"));
    // Same process, different settings: what process-wide environment variables cannot do.
    assert_eq!(ra.field("pid"), rb.field("pid"));
}

#[test]
fn virtual_hosts_have_their_own_apps_settings_and_error_logs() {
    let a = artifacts();
    let lib = a.testapp.display();
    let apache = Apache::start(ApacheConfig::new(&format!(
        "RustAppSetting WHO main\n\
         <VirtualHost *>\n  ServerName default.test\n</VirtualHost>\n\
         <VirtualHost *>\n  ServerName site.test\n  ErrorLog \"{{dir}}/site-error.log\"\n\
           RustAppSetting WHO site\n  RustAppAlias /t {lib}\n</VirtualHost>"
    )));
    let site = http::get_with(&apache.url("/t/info"), &[("Host", "site.test")]);
    assert_eq!(site.status, 200, "{}", site.text());
    assert_eq!(site.field("setting.WHO").as_deref(), Some("site"));
    // The other virtual host does not have the application.
    assert_eq!(
        http::get_with(&apache.url("/t/info"), &[("Host", "default.test")]).status,
        404
    );

    http::get_with(
        &apache.url("/t/log?msg=marker-for-site-log"),
        &[("Host", "site.test")],
    );
    let site_log = std::fs::read_to_string(apache.dir().join("site-error.log")).unwrap_or_default();
    assert!(
        site_log.contains("marker-for-site-log"),
        "site log:\n{site_log}"
    );
    assert!(!apache.error_log().contains("marker-for-site-log"));
}

#[test]
fn request_bodies_arrive_whole_with_length_or_chunked() {
    let a = artifacts();
    let apache = Apache::start(ApacheConfig::new(&format!(
        "RustAppAlias /t {}",
        a.testapp.display()
    )));

    let echoed = http::post(&apache.url("/t/echo"), b"hello body");
    assert_eq!(echoed.status, 200);
    assert_eq!(echoed.text(), "hello body");

    let len = 3 << 20;
    let reply = http::post_chunked(
        &apache.url("/t/upload-digest"),
        PatternReader { offset: 0, len },
    );
    assert_eq!(reply.field("length"), Some(len.to_string()));
    let expected = checksum((0..len).map(http::pattern_byte));
    assert_eq!(reply.field("checksum"), Some(expected.to_string()));
}

#[test]
fn statuses_and_repeated_headers_pass_through_and_head_has_no_body() {
    let a = artifacts();
    let apache = Apache::start(ApacheConfig::new(&format!(
        "RustAppAlias /t {}\nRustAppAlias /hello {}",
        a.testapp.display(),
        a.hello.display()
    )));
    let teapot = http::get(&apache.url("/t/status?code=418"));
    assert_eq!(teapot.status, 418);
    assert_eq!(teapot.text(), "status body");
    assert_eq!(teapot.header_all("X-Multi"), ["one", "two"]);
    let not_found = http::get(&apache.url("/t/status?code=404"));
    assert_eq!(
        (not_found.status, not_found.text().as_str()),
        (404, "status body")
    );

    let head = http::raw_exchange(
        apache.port,
        "HEAD /hello HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(!head.contains("Hello World!"), "{head}");
}

#[test]
fn an_app_at_the_root_leaves_mod_alias_paths_to_apache() {
    let a = artifacts();
    let apache = Apache::start(ApacheConfig::new(&format!(
        "Alias /static \"{{dir}}/htdocs\"\nRustAppAlias / {}",
        a.testapp.display()
    )));
    let app = http::get(&apache.url("/info/x"));
    assert_eq!(app.field("script_name").as_deref(), Some(""));
    assert_eq!(app.field("path_info").as_deref(), Some("/info/x"));
    let file = http::get(&apache.url("/static/static.txt"));
    assert_eq!((file.status, file.text().as_str()), (200, "static file\n"));
}
