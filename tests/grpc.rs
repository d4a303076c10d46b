//! gRPC through Apache: tonic's own client calls examples/grpc-site, a tonic service deployed
//! with `export_service!`, over h2c and over h2 with TLS, embedded and in a daemon group. The
//! streaming calls are causal: each message is sent only after the one it answers arrived.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use grpc_site::{EchoClient, Note};
use support::{Apache, ApacheConfig, artifacts, ensure_user, free_port, load_module};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Request, Streaming};

const USER: &str = "rustapp-grpc";
/// How long any one step may take: far beyond what each needs on loopback.
const BOUND: Duration = Duration::from_secs(20);

/// A certificate authority and a certificate it signed for 127.0.0.1 (as an IP address, which
/// is how TLS clients check it): (CA certificate PEM, certificate file, key file).
fn certificates(dir: &Path) -> (Vec<u8>, String, String) {
    let path = |name: &str| dir.join(name).display().to_string();
    let openssl = |args: &[&str]| {
        let status = Command::new("openssl")
            .args(args)
            .stderr(Stdio::null())
            .status()
            .expect("run openssl");
        assert!(status.success(), "openssl {args:?} failed");
    };
    std::fs::write(
        path("leaf.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    let (ca, ca_key, csr) = (path("ca.pem"), path("ca.key"), path("leaf.csr"));
    let (cert, key, ext) = (path("cert.pem"), path("key.pem"), path("leaf.ext"));
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=test CA",
        "-keyout",
        &ca_key,
        "-out",
        &ca,
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        &key,
        "-out",
        &csr,
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        &ca,
        "-CAkey",
        &ca_key,
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        &ext,
        "-out",
        &cert,
    ]);
    (std::fs::read(&ca).unwrap(), cert, key)
}

/// The service embedded at /e and in daemon group `grpc` at /d, on the plain port (h2c) and
/// over TLS (h2). Returns Apache, the TLS port and the CA certificate to trust.
fn site(dir: &Path, config: impl FnOnce(ApacheConfig) -> ApacheConfig) -> (Apache, u16, Vec<u8>) {
    ensure_user(USER);
    let (ca, cert, key) = certificates(dir);
    let tls_port = free_port();
    let lib = artifacts().dir.join("libgrpc_site.so");
    let lib = lib.display();
    let directives = format!(
        "{ssl}{h2}\
         Protocols h2c http/1.1\n\
         RustAppDaemonProcess grpc processes=1 threads=4 user={USER} home=/\n\
         RustAppAlias /e {lib}\n\
         RustAppAlias /d {lib} process-group=grpc\n\
         Listen 127.0.0.1:{tls_port}\n\
         <VirtualHost 127.0.0.1:{tls_port}>\n  ServerName 127.0.0.1\n  Protocols h2 http/1.1\n\
           SSLEngine on\n  SSLCertificateFile {cert}\n  SSLCertificateKeyFile {key}\n\
         </VirtualHost>\n",
        ssl = load_module("ssl"),
        h2 = load_module("http2"),
    );
    let apache = Apache::start(config(ApacheConfig::new(&directives)));
    ERROR_LOG.with(|log| *log.borrow_mut() = Some(apache.dir().join("error.log")));
    (apache, tls_port, ca)
}

#[derive(Clone, Copy, Debug)]
enum Via {
    H2c,
    Tls,
}

/// A client of the service mounted at `mount` (`/e` or `/d`).
async fn client(
    apache: &Apache,
    tls_port: u16,
    ca: &[u8],
    via: Via,
    mount: &str,
) -> EchoClient<Channel> {
    let (scheme, port) = match via {
        Via::H2c => ("http", apache.port()),
        Via::Tls => ("https", tls_port),
    };
    let mut endpoint = Endpoint::from_shared(format!("{scheme}://127.0.0.1:{port}")).unwrap();
    if let Via::Tls = via {
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(ca))
            .domain_name("127.0.0.1");
        endpoint = endpoint.tls_config(tls).unwrap();
    }
    let channel = tokio::time::timeout(BOUND, endpoint.connect())
        .await
        .expect("connect within the bound")
        .unwrap_or_else(|e| panic!("connect {via:?}: {e:?}"));
    let origin = format!("{scheme}://127.0.0.1:{port}{mount}")
        .parse()
        .unwrap();
    EchoClient::with_origin(channel, origin)
}

thread_local! {
    /// The error log of the Apache this test thread started, shown when a step times out.
    static ERROR_LOG: std::cell::RefCell<Option<std::path::PathBuf>> = const { std::cell::RefCell::new(None) };
}

/// A client over one bare HTTP/2 connection (h2c) to the service mounted at `mount`: tonic's
/// client and codec without tonic's channel, which keeps a call's deadline itself and, when
/// its own timer fires first, reports CANCELLED; here only the server keeps it.
async fn client_without_deadline(apache: &Apache, mount: &str) -> EchoClient<BareH2> {
    let port = apache.port();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let (send, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .expect("an h2c connection to Apache");
    tokio::spawn(connection);
    let origin = format!("http://127.0.0.1:{port}{mount}").parse().unwrap();
    EchoClient::with_origin(BareH2(send), origin)
}

#[derive(Clone)]
struct BareH2(hyper::client::conn::http2::SendRequest<tonic::body::Body>);

impl tonic::codegen::Service<http::Request<tonic::body::Body>> for BareH2 {
    type Response = http::Response<hyper::body::Incoming>;
    type Error = hyper::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, hyper::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), hyper::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        Box::pin(self.0.send_request(request))
    }
}

/// `future`'s output, within the bound.
#[track_caller]
fn bounded<F: std::future::Future>(
    what: &str,
    future: F,
) -> impl std::future::Future<Output = F::Output> {
    let caller = std::panic::Location::caller();
    let what = what.to_owned();
    async move {
        tokio::time::timeout(BOUND, future)
            .await
            .unwrap_or_else(|_| {
                let log = ERROR_LOG.with(|log| {
                    log.borrow()
                        .as_ref()
                        .and_then(|path| std::fs::read_to_string(path).ok())
                        .unwrap_or_default()
                });
                panic!("{what} (at {caller}): nothing within {BOUND:?}\n{log}")
            })
    }
}

/// The next message of a server stream, within the bound.
async fn next(stream: &mut Streaming<Note>, what: &str) -> Note {
    match bounded(what, stream.message()).await {
        Ok(Some(note)) => note,
        other => panic!("{what}: the stream ended instead: {other:?}"),
    }
}

#[tokio::test]
async fn all_four_kinds_of_call_through_apache_over_h2c_and_tls_in_both_modes() {
    let dir = tempfile::tempdir().unwrap();
    let (apache, tls_port, ca) = site(dir.path(), |c| c);
    for via in [Via::H2c, Via::Tls] {
        for mount in ["/e", "/d"] {
            let at = format!("{mount} over {via:?}");
            let mut client = client(&apache, tls_port, &ca, via, mount).await;

            // Unary.
            let answer = bounded(&at, client.say(Note::new("Apache", 7)))
                .await
                .unwrap_or_else(|e| panic!("{at}: Say: {e:?}\n{}", apache.error_log()))
                .into_inner();
            assert_eq!(answer, Note::new("hello Apache", 7), "{at}");

            // Server streaming.
            let mut numbers = bounded(&at, client.count(Note::new("", 5)))
                .await
                .unwrap_or_else(|e| panic!("{at}: Count: {e:?}"))
                .into_inner();
            for n in 1..=5 {
                assert_eq!(next(&mut numbers, &at).await.number, n, "{at}");
            }
            assert!(
                bounded(&at, numbers.message()).await.unwrap().is_none(),
                "{at}: the stream goes on past its end"
            );

            // Client streaming.
            let notes = tokio_stream::iter((1..=10).map(|n| Note::new("n", n)));
            let sum = bounded(&at, client.sum(notes))
                .await
                .unwrap_or_else(|e| panic!("{at}: Sum: {e:?}"))
                .into_inner();
            assert_eq!(sum, Note::new("10 notes", 55), "{at}");

            // Bidirectional, each message sent only after the one before was answered; and
            // notes the service pushes while it waits for the client's next one.
            let (send, outbound) = mpsc::channel(4);
            let mut chat = bounded(&at, client.chat(ReceiverStream::new(outbound)))
                .await
                .unwrap_or_else(|e| panic!("{at}: Chat: {e:?}"))
                .into_inner();
            assert_eq!(next(&mut chat, &at).await.text, "ready", "{at}");
            send.send(Note::new("a", 1)).await.unwrap();
            assert_eq!(next(&mut chat, &at).await, Note::new("echo a", 1), "{at}");
            send.send(Note::new("push:2", 0)).await.unwrap();
            assert_eq!(next(&mut chat, &at).await, Note::new("pushed", 1), "{at}");
            assert_eq!(next(&mut chat, &at).await, Note::new("pushed", 2), "{at}");
            send.send(Note::new("b", 2)).await.unwrap();
            assert_eq!(next(&mut chat, &at).await, Note::new("echo b", 2), "{at}");
            drop(send);
            assert!(
                bounded(&at, chat.message()).await.unwrap().is_none(),
                "{at}: the chat goes on after the client ended it"
            );
        }
    }
}

#[tokio::test]
async fn an_application_error_and_a_passed_deadline_arrive_as_grpc_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let (apache, tls_port, ca) = site(dir.path(), |c| c);
    for via in [Via::H2c, Via::Tls] {
        for mount in ["/e", "/d"] {
            let at = format!("{mount} over {via:?}");
            let mut client = client(&apache, tls_port, &ca, via, mount).await;
            let failed = bounded(&at, client.say(Note::new("fail:no such shelf", 0)))
                .await
                .expect_err("an error");
            assert_eq!(failed.code(), Code::InvalidArgument, "{at}: {failed:?}");
            assert_eq!(failed.message(), "no such shelf", "{at}");

            // The service would answer after a minute; the client gives it 300 ms, which
            // Apache's side keeps.
            if let Via::H2c = via {
                let mut bare = client_without_deadline(&apache, mount).await;
                let mut slow = Request::new(Note::new("sleep:60000", 0));
                slow.set_timeout(Duration::from_millis(300));
                let late = bounded(&at, bare.say(slow)).await.expect_err("a deadline");
                assert_eq!(late.code(), Code::DeadlineExceeded, "{at}: {late:?}");
            }

            // A stream past its deadline ends with that status after what it sent.
            let mut endless = Request::new(Note::new("", 0));
            endless.set_timeout(Duration::from_millis(300));
            let mut numbers = bounded(&at, client.count(endless))
                .await
                .unwrap()
                .into_inner();
            assert_eq!(next(&mut numbers, &at).await.number, 1, "{at}");
            let ended = loop {
                match bounded(&at, numbers.message()).await {
                    Ok(Some(_)) => continue,
                    Ok(None) => panic!("{at}: the stream ended with OK past its deadline"),
                    Err(status) => break status,
                }
            };
            assert_eq!(ended.code(), Code::DeadlineExceeded, "{at}: {ended:?}");
        }
    }
}

#[tokio::test]
async fn a_client_that_cancels_drops_the_server_stream_in_both_modes() {
    let dir = tempfile::tempdir().unwrap();
    // One Apache child: the embedded service's count of dropped streams is per process.
    let (apache, tls_port, ca) = site(dir.path(), |c| c.processes(1));
    for mount in ["/e", "/d"] {
        let at = mount;
        let mut client = client(&apache, tls_port, &ca, Via::H2c, mount).await;
        let dropped = |client: &mut EchoClient<Channel>| {
            let mut client = client.clone();
            async move {
                bounded(at, client.say(Note::new("dropped:", 0)))
                    .await
                    .unwrap()
                    .into_inner()
                    .number
            }
        };
        let before = dropped(&mut client).await;
        let mut numbers = bounded(at, client.count(Note::new("", 0)))
            .await
            .unwrap()
            .into_inner();
        for n in 1..=3 {
            assert_eq!(next(&mut numbers, at).await.number, n, "{at}");
        }
        drop(numbers); // the client resets the stream
        let deadline = Instant::now() + BOUND;
        loop {
            if dropped(&mut client).await > before {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{at}: the server stream was not dropped after the client cancelled\n{}",
                apache.error_log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
