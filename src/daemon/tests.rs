//! The daemon's request server, driven over a real UNIX socket the way an Apache child will
//! drive it, serving the real test application loaded with dlopen.

use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use rustapp_daemon_protocol::{Frame, Limits, PROTOCOL_VERSION, RequestHead, TOKEN_LEN};

use super::connection::Connection;
use super::request_state::{DAEMON_HOST_V1, DaemonAppContext};
use super::server::{DaemonApps, LazyApp, Recycle, ServeOptions, serve};
use crate::config::SettingList;
use crate::host::{AppInstance, load_library};

const TOKEN: [u8; TOKEN_LEN] = [9; TOKEN_LEN];

fn testapp() -> String {
    // target/<profile>/deps/<this test binary> -> target/<profile>/libtestapp.so
    let exe = std::env::current_exe().unwrap();
    let lib: PathBuf = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("libtestapp.so");
    assert!(
        lib.is_file(),
        "{} is missing: build the workspace first",
        lib.display()
    );
    lib.display().to_string()
}

/// Starts a daemon server with `threads` workers; returns where to connect.
fn start_daemon(threads: usize) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("daemon.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let library = testapp();
    let start = move || {
        let table = load_library(&library).map_err(|e| e.to_string())?;
        let context = Box::new(DaemonAppContext {
            label: "test".into(),
        });
        AppInstance::create(
            table,
            &DAEMON_HOST_V1,
            context,
            "/t",
            &library,
            &SettingList::default(),
        )
    };
    let options = ServeOptions {
        threads,
        token: TOKEN,
        allowed_uid: super::os::current_uid(),
        limits: Limits::default(),
        socket_timeout: Duration::from_secs(10),
        recycle: Recycle {
            graceful_timeout: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(5),
            ..Recycle::default()
        },
        request_timeout: Duration::from_secs(60),
        queue_timeout: Duration::from_secs(60),
        max_tunnels: 8,
        stack_size: None,
        roll_lock: None,
        figures: crate::figures::ProcessFigures::default(),
    };
    // Leaked: a daemon's applications live as long as its process.
    let apps: &'static DaemonApps = Box::leak(Box::new(DaemonApps::new(vec![Some(LazyApp::new(
        Box::new(start),
        None,
        true,
    ))])));
    std::thread::spawn(move || serve(listener, apps, options));
    (dir, socket)
}

fn connect(socket: &PathBuf, token: [u8; TOKEN_LEN]) -> Connection {
    let stream = UnixStream::connect(socket).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut conn = Connection::new(stream, Limits::default());
    conn.send(&Frame::Hello {
        version: PROTOCOL_VERSION,
        token,
    })
    .unwrap();
    conn
}

fn greeted(socket: &PathBuf) -> Connection {
    let mut conn = connect(socket, TOKEN);
    assert!(matches!(
        conn.read_frame().unwrap(),
        Some(Frame::Welcome { .. })
    ));
    conn
}

#[derive(Debug, Default)]
struct Answer {
    status: u16,
    headers: Vec<(Bytes, Bytes)>,
    body: Vec<u8>,
    aborted: bool,
    failure: Option<String>,
    logs: Vec<String>,
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// Sends one request and plays the Apache child's part until the response ends.
fn request(conn: &mut Connection, method: &str, path: &str, body: &[u8]) -> Answer {
    request_with(conn, method, path, body, false)
}

/// As `request`; with `inline`, the whole body goes with the head, unasked.
fn request_with(
    conn: &mut Connection,
    method: &str,
    path: &str,
    body: &[u8],
    inline: bool,
) -> Answer {
    let (path_info, query) = path.split_once('?').unwrap_or((path, ""));
    let head = RequestHead {
        app: 0,
        method: b(method),
        uri: b(&format!("/t{path}")),
        protocol: b("HTTP/1.1"),
        script_name: b("/t"),
        path_info: b(path_info),
        query_string: b(query),
        content_length: body.len() as i64,
        idle_timeout_ms: 0,
        sent_at_us: super::os::monotonic_us(),
        body_follows: inline,
        headers: [("Host", "shop.test"), ("X-Test", "abc")]
            .into_iter()
            .collect(),
        vars: [("REMOTE_ADDR", "127.0.0.1"), ("MY_VAR", "from-the-child")]
            .into_iter()
            .collect(),
    };
    conn.queue(&Frame::RequestHead(Box::new(head))).unwrap();
    if inline {
        conn.queue(&Frame::RequestBody(Bytes::copy_from_slice(body)))
            .unwrap();
        conn.queue(&Frame::RequestBodyEnd).unwrap();
    }
    conn.flush().unwrap();
    let mut answer = Answer::default();
    let mut sent = 0;
    loop {
        match conn
            .read_frame()
            .unwrap()
            .expect("the daemon closed mid-request")
        {
            Frame::ReadBody { .. } if inline => panic!("the daemon asked for a body it was sent"),
            Frame::ReadBody { max } => {
                let n = (max as usize).min(body.len() - sent);
                let frame = if n == 0 {
                    Frame::RequestBodyEnd
                } else {
                    Frame::RequestBody(Bytes::copy_from_slice(&body[sent..sent + n]))
                };
                sent += n;
                conn.send(&frame).unwrap();
            }
            Frame::Log { message, .. } => answer
                .logs
                .push(String::from_utf8_lossy(&message).into_owned()),
            Frame::ResponseHead { status, headers } => {
                answer.status = status;
                answer.headers = headers;
            }
            Frame::ResponseBody(data) => answer.body.extend_from_slice(&data),
            Frame::Flush => {}
            Frame::ResponseEnd => return answer,
            Frame::ResponseAbort { .. } => {
                answer.aborted = true;
                return answer;
            }
            Frame::Failed { status, reason } => {
                answer.status = status;
                answer.failure = Some(String::from_utf8_lossy(&reason).into_owned());
                return answer;
            }
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

fn text(answer: &Answer) -> String {
    String::from_utf8_lossy(&answer.body).into_owned()
}

#[test]
fn a_request_reaches_the_app_with_its_headers_and_variables() {
    let (_dir, socket) = start_daemon(2);
    let mut conn = greeted(&socket);
    let answer = request(&mut conn, "GET", "/info/x?y=1", b"");
    assert_eq!(answer.status, 200, "{answer:?}");
    let body = text(&answer);
    for line in [
        "method=GET",
        "uri=/t/info/x?y=1",
        "script_name=/t",
        "path_info=/info/x",
        "query=y=1",
        "header.x-test=abc",
        "lookup.x-test=abc",
        "lookup.REMOTE_ADDR=127.0.0.1",
        "lookup.MY_VAR=from-the-child",
    ] {
        assert!(body.lines().any(|l| l == line), "{line} not in:\n{body}");
    }
    // The same connection serves the next request.
    assert_eq!(request(&mut conn, "GET", "/info", b"").status, 200);
}

#[test]
fn idle_connections_do_not_hold_the_only_worker() {
    let (_dir, socket) = start_daemon(1);
    // Apache children send a request as soon as a connection is greeted, then keep the
    // connection for later: five connections that served a request and now sit idle.
    let mut connections: Vec<Connection> = (0..5)
        .map(|_| {
            let mut conn = greeted(&socket);
            assert_eq!(request(&mut conn, "GET", "/info", b"").status, 200);
            conn
        })
        .collect();
    // Every connection is idle and open; requests on any of them, in any order, are served.
    for i in [4, 0, 2, 1, 3, 4] {
        assert_eq!(
            request(&mut connections[i], "GET", "/info", b"").status,
            200,
            "connection {i}"
        );
    }
}

#[test]
fn request_and_response_bodies_stream_through_the_protocol() {
    let (_dir, socket) = start_daemon(2);
    let mut conn = greeted(&socket);
    let upload: Vec<u8> = (0..(8u64 << 20)).map(|i| (i % 251) as u8).collect();
    let answer = request(&mut conn, "POST", "/upload-digest", &upload);
    let expected = upload
        .iter()
        .fold(0u64, |s, &b| s.wrapping_mul(31).wrapping_add(u64::from(b)));
    assert_eq!(
        text(&answer),
        format!("length={}\nchecksum={expected}\n", upload.len())
    );

    let answer = request(&mut conn, "GET", "/stream?mib=4", b"");
    assert_eq!(answer.body.len(), 4 << 20);
    assert!(
        answer
            .body
            .iter()
            .enumerate()
            .all(|(i, &b)| b == (i % 251) as u8)
    );
}

#[test]
fn a_body_sent_with_the_head_is_read_and_leaves_the_connection_in_step() {
    let (_dir, socket) = start_daemon(1);
    let mut conn = greeted(&socket);
    let upload: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    let expected = upload
        .iter()
        .fold(0u64, |s, &b| s.wrapping_mul(31).wrapping_add(u64::from(b)));
    let answer = request_with(&mut conn, "POST", "/upload-digest", &upload, true);
    assert_eq!(text(&answer), format!("length=5000\nchecksum={expected}\n"));
    // Applications that read none of it, or fail, leave the connection in step too.
    for path in ["/info", "/panic", "/bad-header"] {
        request_with(&mut conn, "POST", path, &upload, true);
        assert_eq!(
            request(&mut conn, "GET", "/info", b"").status,
            200,
            "after {path}"
        );
    }
}

#[test]
fn failures_are_reported_and_the_connection_stays_usable() {
    let (_dir, socket) = start_daemon(2);
    let mut conn = greeted(&socket);

    let panicked = request(&mut conn, "GET", "/panic", b"");
    assert_eq!(panicked.status, 500);
    assert!(
        panicked
            .logs
            .iter()
            .any(|l| l.contains("the test asked for a panic")),
        "{panicked:?}"
    );

    let refused = request(&mut conn, "GET", "/bad-header", b"");
    assert_eq!(refused.status, 500);
    assert!(refused.failure.unwrap().contains("forbidden control byte"));

    let broken = request(&mut conn, "GET", "/close/daemon?mode=fail", b"");
    assert!(
        broken.aborted && broken.status == 200 && !broken.body.is_empty(),
        "{broken:?}"
    );

    assert_eq!(request(&mut conn, "GET", "/info", b"").status, 200);
}

#[test]
fn a_body_apache_could_not_read_keeps_apaches_status() {
    let (_dir, socket) = start_daemon(1);
    let mut conn = greeted(&socket);
    let head = RequestHead {
        method: b("POST"),
        path_info: b("/echo"),
        content_length: 99_999,
        ..RequestHead::default()
    };
    conn.send(&Frame::RequestHead(Box::new(head))).unwrap();
    assert!(matches!(
        conn.read_frame().unwrap(),
        Some(Frame::ReadBody { .. })
    ));
    conn.send(&Frame::RequestBodyFailed { status: 413 })
        .unwrap();
    let status = loop {
        match conn.read_frame().unwrap().unwrap() {
            Frame::Failed { status, .. } => break status,
            Frame::Log { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(status, 413);
}

#[test]
fn a_connection_without_the_token_is_closed_and_others_are_served() {
    let (_dir, socket) = start_daemon(1);
    let mut intruder = connect(&socket, [0; TOKEN_LEN]);
    assert!(
        intruder.read_frame().map(|f| f.is_none()).unwrap_or(true),
        "the daemon answered an unproven peer"
    );
    let mut conn = greeted(&socket);
    assert_eq!(request(&mut conn, "GET", "/info", b"").status, 200);
}

#[test]
fn a_body_piece_the_socket_cannot_take_at_once_goes_out_whole_and_in_order() {
    let (ours, theirs) = UnixStream::pair().unwrap();
    let mut conn = Connection::new(ours, Limits::default());
    // Something encoded already goes first; the piece (1 MiB, more than the socket's default
    // buffer) is written from where it is as far as the socket takes it, the rest copied.
    conn.queue_without_blocking(&Frame::Flush);
    let piece: Vec<u8> = (0..(1u32 << 20)).map(|i| (i % 251) as u8).collect();
    conn.queue_response_body_without_blocking(&piece, Duration::ZERO)
        .unwrap();
    assert!(conn.queued() > 0, "the socket took all of 1 MiB at once");
    conn.queue_response_body_without_blocking(b"tail", Duration::ZERO)
        .unwrap();
    let reader = std::thread::spawn(move || {
        let mut peer = Connection::new(theirs, Limits::default());
        (0..3)
            .map(|_| peer.read_frame().unwrap().unwrap())
            .collect::<Vec<_>>()
    });
    conn.flush().unwrap();
    assert_eq!(
        reader.join().unwrap(),
        [
            Frame::Flush,
            Frame::ResponseBody(Bytes::from(piece)),
            Frame::ResponseBody(b("tail")),
        ]
    );
}
