//! Header values that are not UTF-8 (obs-text, bytes above 0x7F) pass byte-exact both ways,
//! in both modes, for a plain-SDK application and for an axum Router.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use support::{Apache, ApacheConfig, artifacts, ensure_user};

const USER: &str = "rustapp-test-a";

/// The value of response header `name` (case-insensitive) in a raw answer, as bytes.
fn header<'a>(answer: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let head = &answer[..answer.windows(4).position(|w| w == b"\r\n\r\n")?];
    head.split(|&b| b == b'\n').find_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let colon = line.iter().position(|&b| b == b':')?;
        let (field, value) = line.split_at(colon);
        field
            .eq_ignore_ascii_case(name.as_bytes())
            .then(|| value[1..].trim_ascii())
    })
}

#[test]
fn obs_text_header_values_pass_byte_exact_both_ways_in_both_modes() {
    ensure_user(USER);
    let (testapp, axum) = (artifacts().testapp, artifacts().axum_site);
    let apache = Apache::start(ApacheConfig::new(&format!(
        "RustAppDaemonProcess bytes threads=2 user={USER} home=/\n\
         RustAppAlias /e {testapp}\nRustAppAlias /d {testapp} process-group=bytes\n\
         RustAppAlias /ae {axum}\nRustAppAlias /ad {axum} process-group=bytes",
        testapp = testapp.display(),
        axum = axum.display(),
    )));
    let port: u16 = apache.url("").rsplit(':').next().unwrap().parse().unwrap();
    for mount in ["/e", "/d", "/ae", "/ad"] {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut request =
            format!("GET {mount}/header-bytes HTTP/1.1\r\nHost: 127.0.0.1\r\n").into_bytes();
        request.extend_from_slice(b"X-In: \xe9t\xe9 \xff\r\nConnection: close\r\n\r\n");
        stream.write_all(&request).unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        assert!(
            answer.starts_with(b"HTTP/1.1 200"),
            "{mount}: {}",
            String::from_utf8_lossy(&answer)
        );
        assert_eq!(header(&answer, "X-Bytes"), Some(&b"caf\xe9"[..]), "{mount}");
        assert_eq!(
            header(&answer, "X-Echo"),
            Some(&b"\xe9t\xe9 \xff"[..]),
            "{mount}"
        );
    }
}
