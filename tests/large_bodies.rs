//! 64 MiB request and response bodies stream through an Apache child without being held in
//! memory, and LimitRequestBody is honoured.

mod support;

use std::io::Read;

use support::http::{self, PatternReader, checksum, pattern_byte};
use support::{Apache, ApacheConfig, artifacts, memory_kib};

const SIZE: u64 = 64 << 20;
/// A child holding a whole 64 MiB body would grow by at least that much.
const GROWTH_LIMIT_KIB: u64 = 24 * 1024;

fn start_one_child() -> (Apache, u32) {
    let apache = Apache::start(
        ApacheConfig::new(&format!(
            "RustAppAlias /t {}\n<Location /t/echo>\n  LimitRequestBody 1024\n</Location>",
            artifacts().testapp.display()
        ))
        .processes(1),
    );
    // Warm up so the child's threads and the app exist before measuring.
    assert_eq!(http::get(&apache.url("/t/info")).status, 200);
    let children = apache.child_pids();
    assert_eq!(children.len(), 1, "expected one child: {children:?}");
    (apache, children[0])
}

#[test]
fn a_64_mib_upload_streams_through_with_bounded_memory() {
    let (apache, child) = start_one_child();
    let (rss_before, _) = memory_kib(child);
    let reply = http::post_chunked(
        &apache.url("/t/upload-digest"),
        PatternReader {
            offset: 0,
            len: SIZE,
        },
    );
    assert_eq!(reply.field("length"), Some(SIZE.to_string()));
    assert_eq!(
        reply.field("checksum"),
        Some(checksum((0..SIZE).map(pattern_byte)).to_string())
    );
    let (_, peak_after) = memory_kib(child);
    assert!(
        peak_after < rss_before + GROWTH_LIMIT_KIB,
        "child peak {peak_after} KiB vs {rss_before} KiB before the upload"
    );
}

#[test]
fn a_64_mib_response_streams_out_with_bounded_memory() {
    let (apache, child) = start_one_child();
    let (rss_before, _) = memory_kib(child);
    let response = http::agent()
        .get(&apache.url("/t/stream?mib=64"))
        .call()
        .unwrap();
    let mut reader = response.into_reader();
    let mut buf = vec![0u8; 1 << 20];
    let mut offset = 0u64;
    loop {
        let n = reader.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        for (i, b) in buf[..n].iter().enumerate() {
            assert_eq!(
                *b,
                pattern_byte(offset + i as u64),
                "byte {}",
                offset + i as u64
            );
        }
        offset += n as u64;
    }
    assert_eq!(offset, SIZE);
    let (_, peak_after) = memory_kib(child);
    assert!(
        peak_after < rss_before + GROWTH_LIMIT_KIB,
        "child peak {peak_after} KiB vs {rss_before} KiB before the download"
    );
}

#[test]
fn limit_request_body_answers_413_with_length_or_chunked() {
    let (apache, _) = start_one_child();
    assert_eq!(http::post(&apache.url("/t/echo"), &[b'x'; 512]).status, 200);
    assert_eq!(
        http::post(&apache.url("/t/echo"), &[b'x'; 4096]).status,
        413
    );
    let chunked = http::post_chunked(
        &apache.url("/t/echo"),
        PatternReader {
            offset: 0,
            len: 4096,
        },
    );
    assert_eq!(chunked.status, 413);
    assert_eq!(http::get(&apache.url("/t/info")).status, 200);
}
