//! Trailers both ways over HTTP/1.1, in both modes: a chunked request's trailers reach the
//! application; the application's trailers end the chunked response when the client said it
//! takes them (`TE: trailers`), and are dropped (with a debug line) when it did not; after a
//! streamed body and after a body handed over whole with its trailers. HTTP/2 trailers are
//! shown by the gRPC tests (`grpc.rs`), whose status travels in them.

mod support;

use support::http::raw_exchange;
use support::{Apache, ApacheConfig, artifacts, ensure_user};

const USER: &str = "rustapp-trailers";

fn site() -> Apache {
    ensure_user(USER);
    let lib = artifacts().testapp.display().to_string();
    Apache::start(ApacheConfig::new(&format!(
        "LogLevel info rustapp:debug\n\
         RustAppDaemonProcess trailing threads=2 user={USER} home=/\n\
         RustAppAlias /e {lib}\n\
         RustAppAlias /d {lib} process-group=trailing\n\
         <Location /d>\n  RustAppBufferRequestBody Off\n</Location>"
    )))
}

/// The application's two ways of answering with trailers: after a streamed body, and with a
/// whole body (`Response::with_trailer`).
const ANSWERS: [&str; 2] = ["/trailers", "/trailers?whole"];

/// A chunked POST of "hello" with the trailer `X-Sent: yes` to `target` below `mount`; `te`
/// adds `TE: trailers`.
fn request(mount: &str, target: &str, te: bool) -> String {
    format!(
        "POST {mount}{target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{te}\
         Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Sent: yes\r\n\r\n",
        te = if te { "TE: trailers\r\n" } else { "" }
    )
}

#[test]
fn trailers_cross_http1_both_ways_when_the_client_takes_them() {
    let apache = site();
    for (mount, target) in ["/e", "/d"]
        .into_iter()
        .flat_map(|m| ANSWERS.map(|t| (m, t)))
    {
        let reply = String::from_utf8(raw_exchange(apache.port(), &request(mount, target, true)))
            .expect("a text reply");
        let mount = &format!("{mount}{target}");
        assert!(reply.starts_with("HTTP/1.1 200"), "{mount}: {reply}");
        assert!(
            reply.contains("Transfer-Encoding: chunked"),
            "{mount}: {reply}"
        );
        assert!(reply.contains("length=5\n"), "{mount}: {reply}");
        assert!(
            reply.contains("received-trailers=X-Sent=yes\n"),
            "{mount}: the request's trailer did not reach the application: {reply}"
        );
        // The last chunk carries the allowed trailers; Content-Length is never a trailer.
        assert!(
            reply.ends_with("\r\n0\r\nX-Body-Length: 5\r\nX-Done: yes\r\n\r\n"),
            "{mount}: {reply:?}"
        );
    }
    assert!(
        apache.wait_for_log(
            "Content-Length cannot be a trailer",
            4,
            std::time::Duration::from_secs(10)
        ),
        "{}",
        apache.error_log()
    );
}

#[test]
fn a_client_that_did_not_ask_for_trailers_gets_none() {
    let apache = site();
    for (mount, target) in ["/e", "/d"]
        .into_iter()
        .flat_map(|m| ANSWERS.map(|t| (m, t)))
    {
        let reply = String::from_utf8(raw_exchange(apache.port(), &request(mount, target, false)))
            .expect("a text reply");
        let mount = &format!("{mount}{target}");
        assert!(reply.starts_with("HTTP/1.1 200"), "{mount}: {reply}");
        // The body as the application wrote it (Apache may measure it), and no trailer.
        assert!(
            reply.ends_with("length=5\nreceived-trailers=X-Sent=yes\n"),
            "{mount}: {reply:?}"
        );
        assert!(!reply.contains("X-Done"), "{mount}: {reply}");
    }
    assert!(
        apache.wait_for_log(
            "trailer X-Done dropped: over HTTP/1.x only a client that sent `TE: trailers`",
            4,
            std::time::Duration::from_secs(10)
        ),
        "{}",
        apache.error_log()
    );
}
