//! Long-lived and slow exchanges: server-sent events through every protocol Apache speaks,
//! streams longer than request-timeout, many open streams on few daemon threads, slow
//! clients, clients that go away, and graceful restarts with streams open.
//!
//! Streaming tests are causal: the application sends event k+1 only after the test has
//! received event k and said so (a file in an "ack" directory), so a layer that buffers makes
//! the test wait for an event that never comes, and fail at its bound.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::http;
use support::{Apache, ApacheConfig, artifacts, certificate, ensure_user, free_port, load_module};

const USER: &str = "rustapp-test-a";

/// The longest a test waits for one event before calling it held back.
const EVENT_BOUND: Duration = Duration::from_secs(15);

/// A directory anyone may read and write (daemons run as other users), removed when dropped.
fn open_dir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix("rustapp-events-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

/// One Apache serving the axum site embedded at /e and in a daemon group at /d, over
/// HTTP/1.1 and h2c on its plain port and over TLS (h2 and HTTP/1.1) on `tls_port`; under
/// /e/z and /d/z everything passes mod_deflate.
fn protocols_apache(dir: &Path, tls_port: u16) -> Apache {
    ensure_user(USER);
    let (cert, key) = certificate(dir);
    let lib = artifacts().axum_site.display().to_string();
    let directives = format!(
        "{ssl}{h2}{deflate}\
         Protocols h2c http/1.1\n\
         RustAppDaemonProcess streams threads=2 user={USER} home=/\n\
         RustAppAlias /e {lib}\n\
         RustAppAlias /d {lib} process-group=streams\n\
         RustAppAlias /ez {lib}\n\
         RustAppAlias /dz {lib} process-group=streams\n\
         <Location /ez>\n  SetOutputFilter DEFLATE\n</Location>\n\
         <Location /dz>\n  SetOutputFilter DEFLATE\n</Location>\n\
         Listen 127.0.0.1:{tls_port}\n\
         <VirtualHost 127.0.0.1:{tls_port}>\n  ServerName 127.0.0.1\n  Protocols h2 http/1.1\n\
           SSLEngine on\n  SSLCertificateFile {cert}\n  SSLCertificateKeyFile {key}\n\
           <Location /ez>\n    SetOutputFilter DEFLATE\n  </Location>\n\
           <Location /dz>\n    SetOutputFilter DEFLATE\n  </Location>\n\
         </VirtualHost>\n",
        ssl = load_module("ssl"),
        h2 = load_module("http2"),
        deflate = load_module("deflate"),
        cert = cert.display(),
        key = key.display(),
    );
    Apache::start(ApacheConfig::new(&directives))
}

/// Lines a running curl prints, as they come.
struct Curl {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
}

impl Curl {
    fn start(args: &[&str], url: &str) -> Curl {
        let mut child = Command::new("curl")
            .args([
                "--silent",
                "--show-error",
                "--no-buffer",
                "--max-time",
                "60",
            ])
            .args(args)
            .arg(url)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run curl");
        let stdout = child.stdout.take().unwrap();
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Curl { child, lines }
    }

    /// Waits for the line `want`, up to the bound.
    fn expect(&self, want: &str, what: &str) {
        let deadline = Instant::now() + EVENT_BOUND;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line == want => return,
                Ok(_) => {}
                Err(_) => panic!(
                    "{what}: '{want}' did not arrive within {EVENT_BOUND:?}: held back on the way"
                ),
            }
        }
    }
}

impl Drop for Curl {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn events_arrive_one_at_a_time_in_both_modes_over_every_protocol_with_and_without_compression() {
    let dir = open_dir();
    let tls_port = free_port();
    let apache = protocols_apache(dir.path(), tls_port);
    let plain = format!("http://127.0.0.1:{}", apache.port);
    let tls = format!("https://127.0.0.1:{tls_port}");
    let protocols: [(&str, &str, &[&str]); 4] = [
        ("HTTP/1.1", &plain, &["--http1.1"]),
        ("HTTP/1.1 over TLS", &tls, &["--http1.1", "--insecure"]),
        ("h2c", &plain, &["--http2-prior-knowledge"]),
        ("h2 over TLS", &tls, &["--http2", "--insecure"]),
    ];
    let mut case = 0;
    for (mode, mount) in [("embedded", "/e"), ("daemon", "/d")] {
        for (protocol, base, args) in protocols {
            for (encoding, suffix) in [("identity", ""), ("deflate", "z")] {
                case += 1;
                let what = format!("{mode}, {protocol}, {encoding}");
                let ack = dir.path().join(format!("ack-{case}"));
                std::fs::create_dir(&ack).unwrap();
                std::fs::set_permissions(&ack, std::os::unix::fs::PermissionsExt::from_mode(0o777))
                    .unwrap();
                let mut curl_args = args.to_vec();
                if encoding == "deflate" {
                    curl_args.push("--compressed");
                }
                let url = format!("{base}{mount}{suffix}/events?n=3&ack={}", ack.display());
                let curl = Curl::start(&curl_args, &url);
                for k in 0..3 {
                    curl.expect(&format!("data: event {k}"), &what);
                    std::fs::write(ack.join(k.to_string()), "").unwrap();
                }
            }
        }
    }
    assert_eq!(case, 16);
    let log = apache.error_log();
    assert!(!log.contains("aborted"), "{log}");
}

/// Starts `n` raw HTTP/1.1 requests for `path` and waits until each has its first event.
fn open_streams(apache: &Apache, path: &str, n: usize) -> Vec<BufReader<TcpStream>> {
    (0..n)
        .map(|i| {
            let mut stream = TcpStream::connect(("127.0.0.1", apache.port)).unwrap();
            stream.set_read_timeout(Some(EVENT_BOUND)).unwrap();
            write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            while !line.contains("data: event 0") {
                line.clear();
                let n = reader.read_line(&mut line).unwrap_or(0);
                assert!(n > 0, "stream {i} ended before its first event");
            }
            reader
        })
        .collect()
}

/// How long a plain GET takes.
fn timed_get(url: &str) -> (u16, Duration) {
    let started = Instant::now();
    let status = http::get(url).status;
    (status, started.elapsed())
}

/// Five plain GETs to the group's testapp each answer 200 within a second.
fn assert_gets_answer_within_a_second(apache: &Apache, situation: &str) {
    for _ in 0..5 {
        let (status, took) = timed_get(&apache.url("/t/info"));
        assert_eq!(status, 200, "{situation}");
        assert!(
            took < Duration::from_secs(1),
            "{situation} a GET took {took:?}"
        );
    }
}

#[test]
fn a_stream_longer_than_request_timeout_completes_and_its_daemon_stays() {
    ensure_user(USER);
    let a = artifacts();
    let apache = Apache::start(ApacheConfig::new(&format!(
        "RustAppDaemonProcess short request-timeout=2 threads=2 user={USER} home=/\n\
         RustAppAlias /site {} process-group=short\n\
         RustAppAlias /t {} process-group=short",
        a.axum_site.display(),
        a.testapp.display()
    )));
    let pid = http::get(&apache.url("/t/info")).field("pid").unwrap();
    let url = apache.url("/site/stream?chunks=10&delay_ms=1000");
    let streaming = std::thread::spawn(move || {
        let started = Instant::now();
        let reply = http::get(&url);
        (reply, started.elapsed())
    });
    // Requests beside the stream are served all along.
    let mut beside = 0;
    while !streaming.is_finished() && beside < 100 {
        let (status, took) = timed_get(&apache.url("/t/info"));
        assert_eq!(status, 200);
        assert!(
            took < Duration::from_secs(1),
            "a request beside the stream took {took:?}"
        );
        beside += 1;
        std::thread::sleep(Duration::from_millis(250));
    }
    let (reply, took) = streaming.join().unwrap();
    assert_eq!(reply.status, 200);
    let expected: String = (0..10).map(|i| format!("line {i}\n")).collect();
    assert_eq!(reply.text(), expected, "after {took:?}");
    assert!(took >= Duration::from_secs(10), "{took:?}");
    assert!(beside >= 10, "only {beside} requests ran beside the stream");
    assert_eq!(http::get(&apache.url("/t/info")).field("pid").unwrap(), pid);
    let log = apache.error_log();
    assert!(
        !log.contains("stopped serving") && !log.contains("answering 50"),
        "{log}"
    );
}

#[test]
fn fifty_open_streams_leave_two_daemon_threads_free_for_other_requests() {
    ensure_user(USER);
    let a = artifacts();
    let apache = Apache::start(
        ApacheConfig::new(&format!(
            "RustAppDaemonProcess few threads=2 user={USER} home=/\n\
             RustAppAlias /site {} process-group=few\n\
             RustAppAlias /t {} process-group=few",
            a.axum_site.display(),
            a.testapp.display()
        ))
        .processes(5),
    );
    let axum_streams = open_streams(&apache, "/site/events?every_ms=2000", 25);
    let channel_streams = open_streams(&apache, "/t/channel-events?every_ms=2000", 25);
    assert_gets_answer_within_a_second(&apache, "with 50 streams open");
    // The streams still flow: each gets its next event.
    for (i, mut reader) in axum_streams.into_iter().chain(channel_streams).enumerate() {
        let mut line = String::new();
        while !line.contains("data: event 1") {
            line.clear();
            assert!(
                reader.read_line(&mut line).unwrap_or(0) > 0,
                "stream {i} ended"
            );
        }
    }
}

/// Sends an upload of `body` in pieces of `piece` bytes, one every `pause`, and returns the
/// answer.
fn slow_upload(port: u16, path: &str, body: Vec<u8>, piece: usize, pause: Duration) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    for chunk in body.chunks(piece) {
        stream.write_all(chunk).unwrap();
        std::thread::sleep(pause);
    }
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

/// A download that reads a few KiB now and then, with a small receive buffer.
fn slow_download(port: u16, path: &str) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let address: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    socket.connect(&address.into()).unwrap();
    let mut stream: TcpStream = socket.into();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut first = [0u8; 4096];
    stream.read_exact(&mut first).unwrap();
    stream
}

#[test]
fn slow_uploads_and_downloads_cost_apache_threads_not_the_daemons() {
    ensure_user(USER);
    let a = artifacts();
    let apache = Apache::start(
        ApacheConfig::new(&format!(
            "RustAppDaemonProcess slow threads=2 user={USER} home=/\n\
             RustAppAlias /t {} process-group=slow",
            a.testapp.display()
        ))
        .processes(4),
    );
    let port = apache.port;
    let daemon: u32 = http::get(&apache.url("/t/info"))
        .field("pid")
        .unwrap()
        .parse()
        .unwrap();
    let (resident_before, _) = support::memory_kib(daemon);
    let uploads: Vec<_> = (0..20u8)
        .map(|i| {
            let body: Vec<u8> = (0..12_000u32)
                .map(|b| (b as u8).wrapping_mul(i + 1))
                .collect();
            // The application's checksum (testapp's /upload-digest).
            let digest = body
                .iter()
                .fold(0u64, |s, &b| s.wrapping_mul(31).wrapping_add(u64::from(b)));
            let handle = std::thread::spawn(move || {
                slow_upload(
                    port,
                    "/t/upload-digest",
                    body,
                    1000,
                    Duration::from_millis(250),
                )
            });
            (digest, handle)
        })
        .collect();
    // Downloads of 8 MiB whose readers take 4 KiB a second.
    let downloads: Vec<TcpStream> = (0..20)
        .map(|_| slow_download(port, "/t/stream?mib=8"))
        .collect();
    std::thread::sleep(Duration::from_millis(500)); // the uploads are under way
    // What the stalled downloads cost the daemon: their queued output is bounded.
    let (resident, _) = support::memory_kib(daemon);
    let per_download = resident.saturating_sub(resident_before) / 20;
    println!("daemon resident memory per slow download: {per_download} KiB");
    assert!(per_download < 1024, "{per_download} KiB per slow download");
    assert_gets_answer_within_a_second(&apache, "with 20 slow uploads and 20 slow downloads");
    for (digest, handle) in uploads {
        let answer = handle.join().unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.contains("length=12000\n"), "{answer}");
        assert!(answer.contains(&format!("checksum={digest}\n")), "{answer}");
    }
    drop(downloads);
}

/// Waits up to 5 s for `marker`: how long after `since` it appeared.
fn appeared(marker: &Path, since: Instant) -> Option<Duration> {
    while !marker.exists() && since.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    marker.exists().then(|| since.elapsed())
}

#[test]
fn a_client_that_goes_away_drops_its_stream_within_a_second_in_both_modes() {
    ensure_user(USER);
    let lib = artifacts().axum_site.display().to_string();
    let apache = Apache::start(ApacheConfig::new(&format!(
        "{h2}Protocols h2c http/1.1\n\
         RustAppDaemonProcess gone threads=2 user={USER} home=/\n\
         RustAppAlias /e {lib}\n\
         RustAppAlias /d {lib} process-group=gone",
        h2 = load_module("http2")
    )));
    let dir = open_dir();
    for mount in ["/e", "/d"] {
        let name = mount.replace('/', "-");
        // HTTP/1.1: the connection closes.
        let marker = dir.path().join(format!("dropped{name}"));
        let path = format!("{mount}/events?every_ms=600000&marker={}", marker.display());
        let stream = open_streams(&apache, &path, 1).remove(0);
        assert!(
            !marker.exists(),
            "{mount}: dropped while the client was there"
        );
        let gone = Instant::now();
        drop(stream);
        let took = appeared(&marker, gone);
        assert!(
            took.is_some_and(|t| t < Duration::from_secs(1)),
            "{mount}: dropped {took:?} after the client went away"
        );
        // HTTP/2: the stream is reset (curl goes away).
        let marker = dir.path().join(format!("h2-dropped{name}"));
        let url = apache.url(&format!(
            "{mount}/events?every_ms=600000&marker={}",
            marker.display()
        ));
        let curl = Curl::start(&["--http2-prior-knowledge"], &url);
        curl.expect("data: event 0", mount);
        let gone = Instant::now();
        drop(curl);
        let took = appeared(&marker, gone);
        assert!(
            took.is_some_and(|t| t < Duration::from_secs(1)),
            "{mount} over h2: dropped {took:?} after the client went away"
        );
    }
}

/// Reads a chunked response to its end: whether it ended cleanly (with the final chunk).
fn ends_cleanly(reader: &mut BufReader<TcpStream>) -> bool {
    let mut rest = Vec::new();
    let _ = reader.read_to_end(&mut rest);
    rest.ends_with(b"0\r\n\r\n")
}

#[test]
fn a_graceful_restart_ends_open_streams_cleanly_and_leaves_no_old_process() {
    ensure_user(USER);
    let lib = artifacts().axum_site.display().to_string();
    let apache = Apache::start(ApacheConfig::new(&format!(
        "RustAppDaemonProcess roll threads=2 graceful-timeout=5 user={USER} home=/\n\
         RustAppAlias /e {lib}\n\
         RustAppAlias /d {lib} process-group=roll"
    )));
    let mut streams = open_streams(&apache, "/e/events?every_ms=600000", 2);
    streams.extend(open_streams(&apache, "/d/events?every_ms=600000", 2));
    let before = apache.child_pids();
    let restarted = Instant::now();
    apache.graceful();
    for (i, stream) in streams.iter_mut().enumerate() {
        assert!(ends_cleanly(stream), "stream {i} was cut, not ended");
    }
    let ended = restarted.elapsed();
    assert!(
        ended < Duration::from_secs(7),
        "streams ended {ended:?} after the restart"
    );
    // No process of the old generation is left.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let old: Vec<u32> = apache
            .child_pids()
            .into_iter()
            .filter(|pid| before.contains(pid))
            .collect();
        if old.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "old processes left: {old:?}\n{}",
            apache.error_log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The new generation streams.
    let mut again = open_streams(&apache, "/d/events?n=2&every_ms=10", 1);
    assert!(ends_cleanly(&mut again[0]));
}

#[test]
fn applications_built_for_earlier_abi_minors_still_serve_in_both_modes() {
    ensure_user(USER);
    let libs = support::shared_temp_dir();
    let mut directives = format!("RustAppDaemonProcess older threads=2 user={USER} home=/\n");
    for name in ["abi_1_0", "abi_1_1"] {
        let lib = support::build_c_library(name, libs.path());
        directives += &format!(
            "RustAppAlias /{name}/e {lib}\nRustAppAlias /{name}/d {lib} process-group=older\n",
            lib = lib.display()
        );
    }
    let apache = Apache::start(ApacheConfig::new(&directives));
    for name in ["abi_1_0", "abi_1_1"] {
        for mode in ["e", "d"] {
            for _ in 0..3 {
                let reply = http::get(&apache.url(&format!("/{name}/{mode}/")));
                assert_eq!(reply.status, 200, "{name} {mode}: {}", reply.text());
                assert!(reply.text().contains("Hello from C"), "{}", reply.text());
            }
        }
    }
}

#[test]
fn a_request_body_past_the_buffer_limit_streams_and_arrives_whole() {
    ensure_user(USER);
    let lib = artifacts().testapp.display().to_string();
    let apache = Apache::start(ApacheConfig::new(&format!(
        "RustAppDaemonProcess limited threads=2 user={USER} home=/\n\
         RustAppAlias /t {lib} process-group=limited\n\
         RustAppAlias /big {lib} process-group=limited\n\
         <Location /t>\n  RustAppBufferRequestBody 1000\n</Location>\n\
         <Location /big>\n  RustAppBufferRequestBody 300000\n</Location>"
    )));
    // Kept in memory up to the limit (/t), or past 256 KiB in a file the daemon is handed
    // (/big); after it, the rest streams from the client.
    for (path, size) in [
        ("/t/upload-digest", 100_000u32),
        ("/big/upload-digest", 1_000_000),
    ] {
        let body: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let checksum = body
            .iter()
            .fold(0u64, |s, &b| s.wrapping_mul(31).wrapping_add(u64::from(b)));
        // With a length past the limit the body streams from the start; chunked, its first
        // part is read before the daemon is asked and the rest streams.
        for reply in [
            http::post(&apache.url(path), &body),
            http::post_chunked(&apache.url(path), &body[..]),
        ] {
            assert_eq!(reply.status, 200, "{path}: {}", reply.text());
            assert_eq!(reply.field("length"), Some(size.to_string()), "{path}");
            assert_eq!(
                reply.field("checksum"),
                Some(checksum.to_string()),
                "{path}"
            );
        }
    }
}
