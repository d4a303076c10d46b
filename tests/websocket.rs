//! WebSocket through Apache, to the example site's unchanged axum `WebSocketUpgrade` routes,
//! embedded and in a daemon group, over HTTP/1.1, TLS and HTTP/2 (RFC 8441, cleartext and
//! over TLS): echo of text, binary, fragmented and 16 MiB messages, ping/pong and the close
//! handshake; 200 sockets at once; the tunnel caps; authentication before the upgrade; a
//! declined upgrade; graceful restarts and killed daemons with sockets open; and the C ABI's
//! own upgrade, refused to an application built before it.
//!
//! Every exchange is causal: the next message goes out once the previous echo arrived, and
//! every wait has a bound, past which the test fails naming what was held back.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Command;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::rustls;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use support::{Apache, ApacheConfig, artifacts, ensure_user, free_port, load_module};

const USER: &str = "rustapp-test-a";

/// The longest a test waits for one message (16 MiB ones included).
const BOUND: Duration = Duration::from_secs(20);

/// Some stream a WebSocket runs over.
trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

type Socket = WebSocketStream<Box<dyn Io>>;

/// A self-signed certificate for 127.0.0.1: (PEM certificate, PEM key, DER certificate).
fn certificate(dir: &Path) -> (PathBuf, PathBuf, Vec<u8>) {
    let (cert, key) = support::certificate(dir);
    let der = dir.join("cert.der");
    let converted = Command::new("openssl")
        .args(["x509", "-outform", "der", "-in"])
        .arg(&cert)
        .arg("-out")
        .arg(&der)
        .status()
        .expect("run openssl");
    assert!(
        converted.success(),
        "openssl could not convert the certificate"
    );
    (cert, key, std::fs::read(der).unwrap())
}

/// The site embedded at /e and in daemon group `ws` at /d (and /ea, /da behind Basic
/// authentication), on the plain port (HTTP/1.1 and h2c) and over TLS (h2 and HTTP/1.1),
/// with `H2WebSockets on`. Returns Apache, the TLS port and the certificate to trust.
fn site(
    dir: &Path,
    extra: &str,
    config: impl FnOnce(ApacheConfig) -> ApacheConfig,
) -> (Apache, u16, Vec<u8>) {
    ensure_user(USER);
    let (cert, key, der) = certificate(dir);
    let tls_port = free_port();
    let lib = artifacts().axum_site.display().to_string();
    let directives = format!(
        "{ssl}{h2}\
         Protocols h2c http/1.1\nH2WebSockets on\n\
         RustAppDaemonProcess ws threads=2 user={USER} home=/\n\
         RustAppAlias /e {lib}\n\
         RustAppAlias /d {lib} process-group=ws\n\
         RustAppAlias /ea {lib}\n\
         RustAppAlias /da {lib} process-group=ws\n\
         <LocationMatch \"^/(ea|da)\">\n  AuthType Basic\n  AuthName guarded\n  AuthBasicProvider file\n\
           AuthUserFile /dev/null\n  Require valid-user\n</LocationMatch>\n\
         {extra}\n\
         Listen 127.0.0.1:{tls_port}\n\
         <VirtualHost 127.0.0.1:{tls_port}>\n  ServerName 127.0.0.1\n  Protocols h2 http/1.1\n\
           H2WebSockets on\n  SSLEngine on\n  SSLCertificateFile {cert}\n  SSLCertificateKeyFile {key}\n\
         </VirtualHost>\n",
        ssl = load_module("ssl"),
        h2 = load_module("http2"),
        cert = cert.display(),
        key = key.display(),
    );
    let apache = Apache::start(config(ApacheConfig::new(&directives)));
    (apache, tls_port, der)
}

/// How a test client reaches Apache.
#[derive(Clone, Copy, Debug)]
enum Via {
    Http1,
    Tls,
    H2c,
    H2Tls,
}

const EVERY_WAY: [Via; 4] = [Via::Http1, Via::Tls, Via::H2c, Via::H2Tls];

/// Where to connect: the plain and TLS ports, and the certificate to trust.
struct Target {
    port: u16,
    tls_port: u16,
    cert: Vec<u8>,
}

impl Target {
    /// Opens a WebSocket to `path`; `Err` is the HTTP status Apache answered instead.
    async fn open(&self, via: Via, path: &str) -> Result<Socket, u16> {
        let tcp = |port| async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .expect("connect to Apache")
        };
        match via {
            Via::Http1 => {
                let url = format!("ws://127.0.0.1:{}{path}", self.port);
                handshake_h1(&url, Box::new(tcp(self.port).await)).await
            }
            Via::Tls => {
                let stream = self.tls(tcp(self.tls_port).await, b"http/1.1").await;
                let url = format!("wss://127.0.0.1:{}{path}", self.tls_port);
                handshake_h1(&url, Box::new(stream)).await
            }
            Via::H2c => {
                let authority = format!("127.0.0.1:{}", self.port);
                handshake_h2("http", &authority, path, Box::new(tcp(self.port).await)).await
            }
            Via::H2Tls => {
                let stream = self.tls(tcp(self.tls_port).await, b"h2").await;
                let authority = format!("127.0.0.1:{}", self.tls_port);
                handshake_h2("https", &authority, path, Box::new(stream)).await
            }
        }
    }

    async fn tls(
        &self,
        tcp: tokio::net::TcpStream,
        alpn: &[u8],
    ) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Pinned {
                cert: self.cert.clone(),
                provider,
            }))
            .with_no_client_auth();
        config.alpn_protocols = vec![alpn.to_vec()];
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .expect("TLS handshake with Apache")
    }
}

async fn handshake_h1(url: &str, stream: Box<dyn Io>) -> Result<Socket, u16> {
    match tokio_tungstenite::client_async(url, stream).await {
        Ok((socket, _)) => Ok(socket),
        Err(WsError::Http(response)) => Err(response.status().as_u16()),
        Err(e) => panic!("WebSocket handshake with {url} failed: {e}"),
    }
}

/// RFC 8441: an extended CONNECT on an HTTP/2 stream, which then carries the WebSocket.
async fn handshake_h2(
    scheme: &str,
    authority: &str,
    path: &str,
    stream: Box<dyn Io>,
) -> Result<Socket, u16> {
    let (client, connection) = h2::client::handshake(stream).await.expect("h2 handshake");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut client = client.ready().await.expect("h2 connection ready");
    // The server's SETTINGS say whether extended CONNECT is on; they come right after its
    // preface.
    let deadline = Instant::now() + BOUND;
    while !client.is_extended_connect_protocol_enabled() {
        assert!(
            Instant::now() < deadline,
            "Apache never enabled extended CONNECT over h2"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
        client = client.ready().await.expect("h2 connection ready");
    }
    let request = http::Request::builder()
        .method(http::Method::CONNECT)
        .uri(format!("{scheme}://{authority}{path}"))
        .header("sec-websocket-version", "13")
        .extension(h2::ext::Protocol::from_static("websocket"))
        .body(())
        .unwrap();
    let (response, send) = client.send_request(request, false).expect("send CONNECT");
    let response = response.await.expect("CONNECT answered");
    if response.status() != http::StatusCode::OK {
        return Err(response.status().as_u16());
    }
    let io = H2Stream {
        send,
        recv: response.into_body(),
        pending: Bytes::new(),
        _client: client,
    };
    Ok(WebSocketStream::from_raw_socket(Box::new(io) as Box<dyn Io>, Role::Client, None).await)
}

/// An HTTP/2 stream as a byte stream.
struct H2Stream {
    send: h2::SendStream<Bytes>,
    recv: h2::RecvStream,
    pending: Bytes,
    _client: h2::client::SendRequest<Bytes>,
}

impl AsyncRead for H2Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.pending.is_empty() {
            match ready!(self.recv.poll_data(cx)) {
                Some(Ok(data)) => {
                    let _ = self.recv.flow_control().release_capacity(data.len());
                    self.pending = data;
                }
                Some(Err(e)) => return Poll::Ready(Err(std::io::Error::other(e))),
                None => return Poll::Ready(Ok(())),
            }
        }
        let n = self.pending.len().min(out.remaining());
        out.put_slice(&self.pending[..n]);
        self.pending.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for H2Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.send.reserve_capacity(data.len());
        match ready!(self.send.poll_capacity(cx)) {
            Some(Ok(room)) => {
                let n = room.min(data.len());
                self.send
                    .send_data(Bytes::copy_from_slice(&data[..n]), false)
                    .map_err(std::io::Error::other)?;
                Poll::Ready(Ok(n))
            }
            Some(Err(e)) => Poll::Ready(Err(std::io::Error::other(e))),
            None => Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let _ = self.send.send_data(Bytes::new(), true);
        Poll::Ready(Ok(()))
    }
}

/// Trusts exactly the test's own certificate.
#[derive(Debug)]
struct Pinned {
    cert: Vec<u8>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.cert.as_slice() {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("not the test's certificate".into()))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The next message other than a pong-less ping, within the bound.
async fn next(socket: &mut Socket, what: &str) -> Message {
    match tokio::time::timeout(BOUND, socket.next()).await {
        Ok(Some(Ok(message))) => message,
        Ok(other) => panic!("{what}: the socket ended instead: {other:?}"),
        Err(_) => panic!("{what}: nothing arrived within {BOUND:?}: held back on the way"),
    }
}

async fn send(socket: &mut Socket, message: Message, what: &str) {
    tokio::time::timeout(BOUND, socket.send(message))
        .await
        .unwrap_or_else(|_| panic!("{what}: could not send within {BOUND:?}"))
        .unwrap_or_else(|e| panic!("{what}: sending failed: {e}"));
}

/// Sends `message` and expects it back.
async fn echoes(socket: &mut Socket, message: Message, what: &str) {
    send(socket, message.clone(), what).await;
    let back = next(socket, what).await;
    assert!(
        back == message,
        "{what}: sent {} bytes, got back {back:?}",
        message.len()
    );
}

/// Everything the echo route must do, in order.
async fn exercise(socket: &mut Socket, what: &str) {
    echoes(
        socket,
        Message::text("hello through Apache"),
        &format!("{what}: text"),
    )
    .await;
    echoes(
        socket,
        Message::binary(vec![0u8, 1, 2, 254, 255]),
        &format!("{what}: binary"),
    )
    .await;
    // One text message in three frames: the application sees (and echoes) it whole.
    let frames = [
        Frame::message("frag", OpCode::Data(Data::Text), false),
        Frame::message("men", OpCode::Data(Data::Continue), false),
        Frame::message("ted", OpCode::Data(Data::Continue), true),
    ];
    for frame in frames {
        send(socket, Message::Frame(frame), &format!("{what}: fragments")).await;
    }
    let whole = next(socket, &format!("{what}: fragmented")).await;
    assert_eq!(whole, Message::text("fragmented"), "{what}");
    send(
        socket,
        Message::Ping(Bytes::from_static(b"are you there")),
        what,
    )
    .await;
    let pong = next(socket, &format!("{what}: ping")).await;
    assert_eq!(
        pong,
        Message::Pong(Bytes::from_static(b"are you there")),
        "{what}"
    );
    let large: Vec<u8> = (0..16u32 << 20).map(|i| (i % 251) as u8).collect();
    echoes(socket, Message::binary(large), &format!("{what}: 16 MiB")).await;
}

/// The close handshake: the application answers the close, then the socket ends.
async fn closes(mut socket: Socket, what: &str) {
    send(&mut socket, Message::Close(None), what).await;
    match tokio::time::timeout(BOUND, socket.next()).await {
        Ok(Some(Ok(Message::Close(_)))) => {}
        other => panic!("{what}: expected the application's close, got {other:?}"),
    }
    match tokio::time::timeout(BOUND, socket.next()).await {
        Ok(None | Some(Err(_))) => {}
        other => panic!("{what}: expected the end after closing, got {other:?}"),
    }
}

/// Whether the socket ends (closed by Apache or the application) within the bound.
async fn ends(socket: &mut Socket) -> bool {
    loop {
        match tokio::time::timeout(BOUND, socket.next()).await {
            Err(_) => return false,
            Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => return true,
            Ok(Some(Ok(_))) => {}
        }
    }
}

fn target(apache: &Apache, tls_port: u16, cert: &[u8]) -> Target {
    Target {
        port: apache.port(),
        tls_port,
        cert: cert.to_vec(),
    }
}

#[tokio::test]
async fn websockets_echo_in_both_modes_over_every_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let (apache, tls_port, cert) = site(dir.path(), "", |c| c);
    let target = target(&apache, tls_port, &cert);
    for mode in ["/e", "/d"] {
        for via in EVERY_WAY {
            let what = format!("{mode} over {via:?}");
            let mut socket = target
                .open(via, &format!("{mode}/ws/echo"))
                .await
                .unwrap_or_else(|status| {
                    panic!("{what}: answered {status}\n{}", apache.access_log())
                });
            exercise(&mut socket, &what).await;
            closes(socket, &what).await;
        }
    }
    // Over HTTP/2 the switch shows as the rewritten GET; over HTTP/1.1 as a 101.
    let log = apache.access_log();
    assert!(log.contains("\"GET /d/ws/echo HTTP/2.0\""), "{log}");
    assert!(log.contains("\"GET /e/ws/echo HTTP/1.1\" 101"), "{log}");
}

#[tokio::test]
async fn two_hundred_sockets_stay_open_at_once_in_both_modes() {
    let dir = tempfile::tempdir().unwrap();
    let (apache, tls_port, cert) = site(dir.path(), "RustAppMaxTunnels 230", |c| {
        c.processes(1).threads(240)
    });
    let target = target(&apache, tls_port, &cert);
    for mode in ["/e", "/d"] {
        let mut sockets = Vec::new();
        for i in 0..200 {
            let socket = target.open(Via::Http1, &format!("{mode}/ws/echo")).await;
            let socket = socket.unwrap_or_else(|status| {
                panic!(
                    "{mode}: socket {i} answered {status}\n{}",
                    apache.error_log()
                )
            });
            sockets.push(socket);
        }
        // All open: each still answers, after all the others were opened.
        for (i, socket) in sockets.iter_mut().enumerate() {
            echoes(
                socket,
                Message::text(format!("socket {i}")),
                &format!("{mode} socket {i}"),
            )
            .await;
        }
        for socket in sockets {
            closes(socket, mode).await;
        }
    }
}

#[tokio::test]
async fn upgrades_beyond_the_tunnel_caps_are_answered_503() {
    let dir = tempfile::tempdir().unwrap();
    let (apache, tls_port, cert) = site(
        dir.path(),
        "RustAppMaxTunnels 3\n\
         RustAppDaemonProcess capped threads=2 max-tunnels=1 user=rustapp-test-a home=/\n\
         RustAppAlias /dc {lib} process-group=capped"
            .replace("{lib}", &artifacts().axum_site.display().to_string())
            .as_str(),
        |c| c.processes(1),
    );
    let target = target(&apache, tls_port, &cert);
    // The daemon group's cap.
    let first = target
        .open(Via::Http1, "/dc/ws/echo")
        .await
        .expect("first in the group");
    assert_eq!(
        target.open(Via::Http1, "/dc/ws/echo").await.err(),
        Some(503)
    );
    // The Apache child's cap: one tunnel is open, two more fit.
    let second = target
        .open(Via::Http1, "/e/ws/echo")
        .await
        .expect("second in the child");
    let mut third = target
        .open(Via::Http1, "/e/ws/echo")
        .await
        .expect("third in the child");
    assert_eq!(target.open(Via::Http1, "/e/ws/echo").await.err(), Some(503));
    echoes(&mut third, Message::text("still fine"), "third").await;
    let log = apache.error_log();
    assert!(log.contains("max-tunnels"), "{log}");
    assert!(log.contains("RustAppMaxTunnels limit of 3"), "{log}");
    // A closed tunnel gives its slot back.
    for socket in [first, second] {
        closes(socket, "closing").await;
    }
    let mut again = target
        .open(Via::Http1, "/dc/ws/echo")
        .await
        .expect("the group has room again");
    echoes(&mut again, Message::text("again"), "again").await;
}

#[tokio::test]
async fn authentication_runs_before_the_upgrade_and_a_declined_upgrade_answers_normally() {
    let dir = tempfile::tempdir().unwrap();
    let (apache, tls_port, cert) = site(dir.path(), "", |c| c);
    let target = target(&apache, tls_port, &cert);
    for mode in ["/ea", "/da"] {
        for via in [Via::Http1, Via::H2c] {
            let refused = target.open(via, &format!("{mode}/ws/echo")).await.err();
            assert_eq!(refused, Some(401), "{mode} over {via:?}");
        }
    }
    // A route that is no WebSocket answers the offer like any other request.
    for mode in ["/e", "/d"] {
        let head = raw_upgrade(target.port, &format!("{mode}/api/site"), "websocket");
        assert!(
            head.starts_with("HTTP/1.1 200"),
            "{mode}: {head}\n{}",
            apache.error_log()
        );
        assert!(head.contains("application/json"), "{mode}: {head}");
    }
}

#[tokio::test]
async fn a_socket_idle_past_its_limit_is_closed_in_both_modes() {
    let dir = tempfile::tempdir().unwrap();
    let (apache, tls_port, cert) = site(
        dir.path(),
        "<LocationMatch \"^/(e|d)/ws/\">\n  RustAppStreamIdleTimeout 1\n</LocationMatch>",
        |c| c,
    );
    let target = target(&apache, tls_port, &cert);
    for mode in ["/e", "/d"] {
        let mut socket = target
            .open(Via::Http1, &format!("{mode}/ws/echo"))
            .await
            .unwrap();
        echoes(&mut socket, Message::text("then silence"), mode).await;
        assert!(
            ends(&mut socket).await,
            "{mode}: an idle socket stayed open"
        );
    }
    let log = apache.error_log();
    assert_eq!(
        log.matches("nothing moved on the switched connection for 1 s")
            .count(),
        2,
        "{log}"
    );
}

/// Sends an upgrade request for `protocol` on a new connection: the head of the answer.
fn raw_upgrade(port: u16, path: &str, protocol: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(BOUND)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: {protocol}\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

#[tokio::test]
async fn a_graceful_restart_closes_open_sockets_and_new_ones_work() {
    let dir = tempfile::tempdir().unwrap();
    let (apache, tls_port, cert) = site(dir.path(), "", |c| c);
    let target = target(&apache, tls_port, &cert);
    let mut open = Vec::new();
    for mode in ["/e", "/d"] {
        for via in [Via::Http1, Via::H2Tls] {
            let mut socket = target
                .open(via, &format!("{mode}/ws/echo"))
                .await
                .unwrap_or_else(|s| panic!("{mode} {via:?}: {s}\n{}", apache.error_log()));
            echoes(&mut socket, Message::text("before"), mode).await;
            open.push((mode, via, socket));
        }
    }
    apache.graceful();
    for (mode, via, mut socket) in open {
        assert!(
            ends(&mut socket).await,
            "{mode} over {via:?}: the socket stayed open through the restart\n{}",
            apache.error_log()
        );
    }
    // The client reconnects, to the new generation.
    let deadline = Instant::now() + BOUND;
    for mode in ["/e", "/d"] {
        let mut socket = loop {
            match target.open(Via::Http1, &format!("{mode}/ws/echo")).await {
                Ok(socket) => break socket,
                Err(status) => {
                    assert!(Instant::now() < deadline, "{mode}: no reconnect ({status})");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        echoes(&mut socket, Message::text("after"), mode).await;
    }
}

/// The processes of daemon group users: those running as `user`.
fn processes_of(user: &str) -> Vec<i32> {
    let uid = ensure_user(user);
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|status| {
                status
                    .lines()
                    .find(|l| l.starts_with("Uid:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .is_some_and(|u| u == uid.to_string())
            })
        })
        .collect()
}

#[tokio::test]
async fn a_daemon_killed_with_sockets_open_closes_them() {
    const KILLED: &str = "rustapp-test-ws";
    let dir = tempfile::tempdir().unwrap();
    let lib = artifacts().axum_site.display().to_string();
    let (apache, tls_port, cert) = site(
        dir.path(),
        &format!(
            "RustAppDaemonProcess doomed threads=2 user={KILLED} home=/\n\
             RustAppAlias /k {lib} process-group=doomed"
        ),
        |c| c,
    );
    ensure_user(KILLED);
    let target = target(&apache, tls_port, &cert);
    let mut sockets = Vec::new();
    for via in [Via::Http1, Via::H2c] {
        let mut socket = target.open(via, "/k/ws/echo").await.unwrap();
        echoes(&mut socket, Message::text("alive"), "before the kill").await;
        sockets.push(socket);
    }
    let daemons = processes_of(KILLED);
    assert_eq!(daemons.len(), 1, "one daemon process: {daemons:?}");
    // SAFETY: signalling the daemon process this test's Apache started.
    unsafe { libc::kill(daemons[0], libc::SIGKILL) };
    for mut socket in sockets {
        assert!(ends(&mut socket).await, "a socket outlived its daemon");
    }
    // Its supervisor starts another; new sockets work.
    let deadline = Instant::now() + BOUND;
    let mut socket = loop {
        match target.open(Via::Http1, "/k/ws/echo").await {
            Ok(socket) => break socket,
            Err(status) => {
                assert!(Instant::now() < deadline, "no daemon came back ({status})");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    echoes(&mut socket, Message::text("again"), "after the kill").await;
}

#[test]
fn a_c_application_takes_the_connection_and_one_built_before_upgrades_gets_500() {
    ensure_user(USER);
    let libs = support::shared_temp_dir();
    let mut directives = format!("RustAppDaemonProcess c threads=2 user={USER} home=/\n");
    for name in ["hello", "abi_1_2"] {
        let lib = support::build_c_library(name, libs.path());
        directives += &format!(
            "RustAppAlias /{name}/e {lib}\nRustAppAlias /{name}/d {lib} process-group=c\n",
            lib = lib.display()
        );
    }
    let apache = Apache::start(ApacheConfig::new(&directives));
    let port = apache.port();
    for mode in ["e", "d"] {
        let head = raw_upgrade(port, &format!("/abi_1_2/{mode}/switch"), "echo");
        assert!(head.starts_with("HTTP/1.1 500"), "{mode}: {head}");
        // The raw C ABI: 101, then the application echoes the bytes it is sent.
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_read_timeout(Some(BOUND)).unwrap();
        write!(
            stream,
            "GET /hello/{mode}/switch HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n"
        )
        .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8];
        while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head);
        assert!(head.starts_with("HTTP/1.1 101"), "{mode}: {head}");
        assert!(head.contains("Upgrade: echo"), "{mode}: {head}");
        for round in 0..3 {
            let sent = format!("round {round} of raw bytes");
            stream.write_all(sent.as_bytes()).unwrap();
            let mut back = vec![0u8; sent.len()];
            stream.read_exact(&mut back).expect("the echo");
            assert_eq!(back, sent.as_bytes(), "{mode}");
        }
    }
    let log = apache.error_log();
    assert!(log.contains("status 101"), "{log}");
}
