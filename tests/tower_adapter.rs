//! An axum Router deployed with `rustapp::export_service!` runs unchanged under Apache: routes,
//! extractors, streaming both ways, tower-http layers, and panics that cost one request.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::http::{self, PatternReader, checksum, pattern_byte};
use support::{Apache, ApacheConfig, artifacts, memory_kib, shared_temp_dir};

fn start(extra: &str) -> Apache {
    Apache::start(
        ApacheConfig::new(&format!(
            "LogLevel info rustapp:debug\n\
             RustAppAlias /site {} setting=SITE_NAME=Demo setting=ITEM_COUNT=12\n{extra}\n\
             SetEnv MY_VAR from-setenv",
            artifacts().axum_site.display()
        ))
        .processes(1),
    )
}

#[test]
fn routes_extractors_and_settings_work_as_in_axum() {
    let apache = start("");
    let hello = http::get(&apache.url("/site/"));
    assert_eq!((hello.status, hello.text().as_str()), (200, "Hello World!"));
    assert_eq!(http::get(&apache.url("/site")).text(), "Hello World!");

    let site = http::get(&apache.url("/site/api/site"));
    assert_eq!(site.header("Content-Type"), Some("application/json"));
    assert_eq!(site.text(), r#"{"items":12,"name":"Demo"}"#);

    let item = http::get(&apache.url("/site/api/items/3"));
    assert_eq!(
        item.text(),
        r#"{"id":3,"name":"item number 3","price_cents":300}"#
    );
    assert_eq!(http::get(&apache.url("/site/api/items/99")).status, 404);
    assert_eq!(
        http::get(&apache.url("/site/api/items/not-a-number")).status,
        400
    );

    let search = http::get(&apache.url("/site/api/search?q=number%201&limit=2"));
    assert_eq!(
        search.text(),
        r#"[{"id":1,"name":"item number 1","price_cents":100},{"id":10,"name":"item number 10","price_cents":1000}]"#
    );

    let echoed = http::agent()
        .post(&apache.url("/site/api/echo"))
        .set("Content-Type", "application/json")
        .send_string(r#"{"hello":[1,2,3]}"#)
        .unwrap()
        .into_string()
        .unwrap();
    assert_eq!(echoed, r#"{"received":{"hello":[1,2,3]}}"#);
}

#[test]
fn the_service_sees_paths_below_its_mount_and_apache_facts_in_extensions() {
    // Variables larger than the room the SDK first offers for them (2 KiB), with the one the
    // service asks for after them: copied whole all the same.
    let apache = start(&format!("SetEnv BIG_VAR {}", "x".repeat(3000)));
    let who = http::get(&apache.url("/site/whoami?x=1")).text();
    for expected in [
        r#""uri_seen_by_service":"/whoami?x=1""#,
        r#""script_name":"/site""#,
        r#""request_uri":"/site/whoami?x=1""#,
        r#""remote_addr":"127.0.0.1:"#,
        r#""https":false"#,
        r#""my_var":"from-setenv""#,
    ] {
        assert!(who.contains(expected), "{expected} not in {who}");
    }
}

/// `export_service!(make, users = ...)`: Apache checks users against the service's store
/// (axum-site's is the examples' SQLite user database) and the service sees who signed in.
#[test]
fn a_services_user_store_answers_apaches_authentication() {
    let db_dir = shared_temp_dir();
    let db = db_dir.path().join("users.db");
    for (args, stdin) in [
        (&["add-user", "alice"][..], "s3cret\n"),
        (&["add-group", "alice", "staff"][..], ""),
        (&["add-user", "bob"][..], "hunter2\n"),
    ] {
        let mut admin = std::process::Command::new(artifacts().usersite_admin)
            .arg(&db)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        admin
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        assert!(admin.wait().unwrap().success(), "{args:?}");
    }
    let protect = "AuthType Basic\n  AuthName Staff\n  AuthBasicProvider rustapp\n  Require rustapp-group staff\n  AuthzSendForbiddenOnFailure On";
    let apache = Apache::start(ApacheConfig::new(&format!(
        "RustAppAlias /site {lib} setting=USERSITE_DB={db}\n\
         RustAppAlias /bare {lib}\n\
         <Location /site/whoami>\n  {protect}\n</Location>\n\
         <Location /bare/whoami>\n  {protect}\n</Location>",
        lib = artifacts().axum_site.display(),
        db = db.display()
    )));
    let url = apache.url("/site/whoami");
    assert_eq!(http::get(&url).status, 401);
    let alice = http::get_as(&url, "alice", "s3cret");
    assert_eq!(alice.status, 200, "{}", apache.error_log());
    assert!(
        alice.text().contains(r#""remote_user":"alice""#),
        "{}",
        alice.text()
    );
    assert_eq!(http::get_as(&url, "alice", "wrong").status, 401);
    assert_eq!(http::get_as(&url, "bob", "hunter2").status, 403);

    // The same service without a database has no user store, and says so.
    assert_eq!(
        http::get_as(&apache.url("/bare/whoami"), "alice", "s3cret").status,
        500
    );
    assert!(
        apache
            .error_log()
            .contains("cannot answer a password check: it has no user store"),
        "{}",
        apache.error_log()
    );
}

#[test]
fn tower_http_layers_apply_to_deployed_responses() {
    let apache = start("");
    let plain = http::get(&apache.url("/site/api/items"));
    assert_eq!(plain.header("Content-Encoding"), None);
    let gzipped = http::get_with(
        &apache.url("/site/api/items"),
        &[("Accept-Encoding", "gzip")],
    );
    assert_eq!(gzipped.header("Content-Encoding"), Some("gzip"));
    assert_eq!(&gzipped.body[..2], &[0x1f, 0x8b], "not a gzip stream");
    assert!(gzipped.body.len() < plain.body.len());
    // TraceLayer's events reach Apache's error log through `log`.
    assert!(
        apache.wait_for_log("finished processing request", 2, Duration::from_secs(5)),
        "{}",
        apache.error_log()
    );
}

#[test]
fn a_streamed_response_reaches_the_client_as_it_is_produced() {
    let apache = start("");
    let mut stream = TcpStream::connect(("127.0.0.1", apache.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let started = Instant::now();
    stream
        .write_all(b"GET /site/stream?chunks=5&delay_ms=300 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut received = Vec::new();
    let mut first_line_at = None;
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        received.extend_from_slice(&buf[..n]);
        if first_line_at.is_none() && String::from_utf8_lossy(&received).contains("line 0") {
            first_line_at = Some(started.elapsed());
        }
    }
    let total = started.elapsed();
    let text = String::from_utf8_lossy(&received);
    assert!(text.contains("line 4"), "{text}");
    let first = first_line_at.expect("line 0 arrived");
    assert!(
        total >= Duration::from_millis(1400),
        "the stream was not paced: {total:?}"
    );
    assert!(
        first < Duration::from_millis(900),
        "the first line waited for the rest: {first:?} of {total:?}"
    );
}

#[test]
fn a_64_mib_upload_streams_through_rustapp_body_with_bounded_memory() {
    let apache = start("");
    assert_eq!(http::get(&apache.url("/site/")).status, 200);
    let child = apache.child_pids()[0];
    let (rss_before, _) = memory_kib(child);
    let size: u64 = 64 << 20;
    let reply = http::post_chunked(
        &apache.url("/site/upload"),
        PatternReader {
            offset: 0,
            len: size,
        },
    );
    assert_eq!(
        reply.field("length"),
        Some(size.to_string()),
        "{}",
        reply.text()
    );
    assert_eq!(
        reply.field("checksum"),
        Some(checksum((0..size).map(pattern_byte)).to_string())
    );
    let (_, peak) = memory_kib(child);
    assert!(
        peak < rss_before + 24 * 1024,
        "child peak {peak} KiB vs {rss_before} KiB before"
    );
}

#[test]
fn a_panicking_handler_is_a_500_and_the_next_request_is_fine() {
    let apache = start("");
    let children = apache.child_pids();
    assert_eq!(http::get(&apache.url("/site/panic")).status, 500);
    assert_eq!(http::get(&apache.url("/site/")).text(), "Hello World!");
    assert_eq!(apache.child_pids(), children);
    let log = apache.error_log();
    assert!(
        log.contains("application panicked at examples/axum-site/src/lib.rs"),
        "{log}"
    );
    assert!(log.contains("the axum test asked for a panic"), "{log}");
    assert!(!log.contains("exit signal"), "{log}");
}

#[test]
fn a_bad_typed_setting_stops_the_app_with_a_clear_message() {
    let apache = Apache::start(ApacheConfig::new(&format!(
        "RustAppAlias /site {} setting=ITEM_COUNT=lots",
        artifacts().axum_site.display()
    )));
    assert_eq!(http::get(&apache.url("/site/")).status, 500);
    assert!(
        apache.wait_for_log(
            "the setting ITEM_COUNT=\"lots\" is not valid",
            1,
            Duration::from_secs(5)
        ),
        "{}",
        apache.error_log()
    );
}

/// The raw target of `path` on a fresh connection, exactly as written (no client normalises it).
fn get_raw(apache: &Apache, path: &str) -> (u16, String) {
    let port: u16 = apache.url("").rsplit(':').next().unwrap().parse().unwrap();
    let reply = http::raw_exchange(
        port,
        &format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"),
    );
    let reply = String::from_utf8_lossy(&reply).into_owned();
    let status = reply[9..12].parse().unwrap();
    let body = reply
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn the_service_decodes_the_clients_path_once_whatever_the_mount_spelling() {
    support::ensure_user("rustapp-test-a");
    let apache = start(&format!(
        "RustAppDaemonProcess paths threads=2 user=rustapp-test-a home=/\n\
         RustAppAlias /d {lib} process-group=paths\nRustAppAlias /jz {lib}",
        lib = artifacts().axum_site.display()
    ));
    for (mount, spellings) in [
        ("/site", &["/%73ite", "/%73%69%74%65"][..]),
        ("/d", &["/%64"][..]),
        // Hex digits in either case.
        ("/jz", &["/%6Az", "/%6az", "/j%7A", "/%6a%7a"][..]),
    ] {
        for prefix in std::iter::once(&mount).chain(spellings) {
            // `%2525` is `%25` once decoded: a second decode would make it `%`.
            let (status, body) = get_raw(&apache, &format!("{prefix}/decoded/a%2525b%20c"));
            assert_eq!((status, body.as_str()), (200, "a%25b c"), "{prefix}");
        }
        // Apache merges the slashes, so the client's spelling no longer shows the mount: the
        // path Apache decoded goes to the service encoded again, still one decode in all.
        let (status, body) = get_raw(&apache, &format!("/{mount}//decoded/x%2525"));
        assert_eq!((status, body.as_str()), (200, "x%25"), "/{mount}");
    }
}

/// A chunked upload of `body` with the trailer `X-Sent: yes` to the service's trailer-reading
/// route below `mount`, as one write (the body has all arrived when the service starts) or, with
/// `pause`, with the last chunk and trailer written only once the head was answered with
/// `100 Continue` (so the service streams them).
fn upload_with_trailer(apache: &Apache, mount: &str, pause: bool) -> String {
    let head = format!(
        "POST {mount}/upload-trailers HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Transfer-Encoding: chunked\r\n{expect}\r\n",
        expect = if pause {
            "Expect: 100-continue\r\n"
        } else {
            ""
        }
    );
    let (first, rest) = ("5\r\nhello\r\n", "6\r\n world\r\n0\r\nX-Sent: yes\r\n\r\n");
    let mut stream = TcpStream::connect(("127.0.0.1", apache.port())).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    if pause {
        stream.write_all(head.as_bytes()).unwrap();
        // The service asks for the body only when it reads it: Apache answers 100 then.
        let mut interim = [0u8; 25];
        stream.read_exact(&mut interim).unwrap();
        assert!(interim.starts_with(b"HTTP/1.1 100 Continue"), "{mount}");
        stream.write_all(first.as_bytes()).unwrap();
        stream.write_all(rest.as_bytes()).unwrap();
    } else {
        stream
            .write_all(format!("{head}{first}{rest}").as_bytes())
            .unwrap();
    }
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply);
    reply
}

#[test]
fn a_services_request_body_ends_with_the_clients_trailers_in_both_modes() {
    support::ensure_user("rustapp-test-a");
    let apache = start(&format!(
        "{h2}Protocols h2c http/1.1\n\
         RustAppDaemonProcess trailing threads=2 user=rustapp-test-a home=/\n\
         RustAppAlias /d {lib} process-group=trailing",
        h2 = support::load_module("http2"),
        lib = artifacts().axum_site.display(),
    ));
    for mount in ["/site", "/d"] {
        for pause in [false, true] {
            let reply = upload_with_trailer(&apache, mount, pause);
            assert!(
                reply.starts_with("HTTP/1.1 200"),
                "{mount} {pause}: {reply}"
            );
            assert!(
                reply.contains("length=11\ntrailers=x-sent=yes\n"),
                "{mount} {pause}: {reply}"
            );
        }
        // Over h2c the client waits for `100 Continue` too: without it, this one would still
        // be waiting at its 10 s limit (it gives the interim response 60 s).
        let body = "a body that waits for 100 Continue";
        let out = std::process::Command::new("curl")
            .args([
                "-sS",
                "--http2-prior-knowledge",
                "--expect100-timeout",
                "60",
            ])
            .args(["--max-time", "10", "-H", "Expect: 100-continue"])
            .args(["--data-binary", body])
            .arg(apache.url(&format!("{mount}/upload")))
            .output()
            .expect("run curl");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!(
                "length={}\nchecksum={}\n",
                body.len(),
                checksum(body.bytes())
            ),
            "{mount} over h2c: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
