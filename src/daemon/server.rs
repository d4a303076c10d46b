//! A daemon's request server.
//!
//! Apache children keep their connections to a daemon open between requests, so a daemon may
//! hold many more connections than it has threads. A connection therefore only occupies a
//! worker while a request is on it: idle connections wait in a poller thread, which hands a
//! connection to the `threads` workers when its peer sends something. (A thread per
//! connection would let idle connections pin every worker and stall the group.)

use std::collections::HashMap;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use rustapp_daemon_protocol::{Frame, Limits, PROTOCOL_VERSION, RequestHead, TOKEN_LEN};

use super::connection::Connection;
use super::host::DaemonRequest;
use crate::app::{AppInstance, BodyPiece, Handled};

/// How a daemon serves.
#[derive(Clone)]
pub(crate) struct ServerConfig {
    /// Requests served at once.
    pub(crate) threads: usize,
    /// The secret every connection must present first.
    pub(crate) token: [u8; TOKEN_LEN],
    /// The only user (besides root) allowed to connect: Apache's child user.
    pub(crate) allowed_uid: u32,
    pub(crate) limits: Limits,
    /// How long to wait for the Apache child while a request is on the connection.
    pub(crate) socket_timeout: Duration,
}

/// The applications a daemon serves, by the index the Apache child names in `RequestHead`.
pub(crate) struct Registry {
    apps: Vec<LazyApp>,
}

type StartFn = Box<dyn Fn() -> Result<AppInstance, String> + Send + Sync>;

/// An application a daemon starts at most once, when first needed (or at once if preloaded).
pub(crate) struct LazyApp {
    start: StartFn,
    instance: OnceLock<Result<AppInstance, String>>,
}

impl LazyApp {
    pub(crate) fn new(start: StartFn, preload: bool) -> LazyApp {
        let app = LazyApp {
            start,
            instance: OnceLock::new(),
        };
        if preload {
            let _ = app.get();
        }
        app
    }

    fn get(&self) -> Result<&AppInstance, &str> {
        match self.instance.get_or_init(|| {
            let started = (self.start)();
            if let Err(reason) = &started {
                log::error!("daemon: an application cannot serve: {reason}");
            }
            started
        }) {
            Ok(app) => Ok(app),
            Err(reason) => Err(reason),
        }
    }
}

impl Registry {
    pub(crate) fn new(apps: Vec<LazyApp>) -> Registry {
        Registry { apps }
    }

    fn get(&self, index: u32) -> Result<&AppInstance, String> {
        match self.apps.get(index as usize) {
            Some(app) => app
                .get()
                .map_err(|reason| format!("the application cannot serve: {reason}")),
            None => Err(format!("this daemon has no application #{index}")),
        }
    }
}

const LISTENER: Token = Token(0);
const WAKE: Token = Token(1);
const FIRST_CONNECTION: usize = 2;

/// Serves connections from `listener` until it fails. Blocks the calling thread (the poller).
pub(crate) fn serve(
    listener: UnixListener,
    registry: Arc<Registry>,
    config: ServerConfig,
) -> io::Result<()> {
    let mut poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKE)?);
    listener.set_nonblocking(true)?;
    poll.registry().register(
        &mut SourceFd(&listener.as_raw_fd()),
        LISTENER,
        Interest::READABLE,
    )?;

    let (ready, to_workers) = mpsc::channel::<Connection>();
    let to_workers = Arc::new(Mutex::new(to_workers));
    let (returned, from_workers) = mpsc::channel::<Connection>();
    for n in 0..config.threads.max(1) {
        let (to_workers, returned, waker) = (to_workers.clone(), returned.clone(), waker.clone());
        let (registry, config) = (registry.clone(), config.clone());
        std::thread::Builder::new()
            .name(format!("rustapp-daemon-{n}"))
            .spawn(move || work(&to_workers, &returned, &waker, &registry, &config))?;
    }

    let mut idle: HashMap<Token, Connection> = HashMap::new();
    let mut next_token = FIRST_CONNECTION;
    let mut events = Events::with_capacity(256);
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for event in &events {
            match event.token() {
                LISTENER => loop {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let _ = ready.send(Connection::new(stream, config.limits));
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => {
                            log::error!("daemon: accepting a connection failed: {e}");
                            break;
                        }
                    }
                },
                WAKE => {
                    for mut conn in from_workers.try_iter() {
                        if conn.has_buffered_input() {
                            let _ = ready.send(conn);
                            continue;
                        }
                        let token = Token(next_token);
                        next_token += 1;
                        let fd = conn.stream.as_raw_fd();
                        if poll
                            .registry()
                            .register(&mut SourceFd(&fd), token, Interest::READABLE)
                            .is_ok()
                        {
                            idle.insert(token, conn);
                        }
                    }
                }
                token => {
                    if let Some(conn) = idle.remove(&token) {
                        let fd = conn.stream.as_raw_fd();
                        let _ = poll.registry().deregister(&mut SourceFd(&fd));
                        let _ = ready.send(conn);
                    }
                }
            }
        }
    }
}

/// A worker: serves one turn of whichever connection is ready, then gives it back.
fn work(
    to_workers: &Mutex<Receiver<Connection>>,
    returned: &Sender<Connection>,
    waker: &Waker,
    registry: &Registry,
    config: &ServerConfig,
) {
    loop {
        let next = to_workers.lock().map(|r| r.recv());
        let Ok(Ok(mut conn)) = next else { return };
        match serve_turn(&mut conn, registry, config) {
            Ok(Turn::Again) => {
                if returned.send(conn).is_err() || waker.wake().is_err() {
                    return;
                }
            }
            Ok(Turn::Closed) => {}
            Err(e) => log::info!("daemon: closing a connection: {e}"),
        }
    }
}

enum Turn {
    /// Keep the connection for the next request.
    Again,
    Closed,
}

fn serve_turn(
    conn: &mut Connection,
    registry: &Registry,
    config: &ServerConfig,
) -> io::Result<Turn> {
    conn.stream.set_read_timeout(Some(config.socket_timeout))?;
    if !conn.greeted {
        return greet(conn, config);
    }
    match conn.read_frame()? {
        None => Ok(Turn::Closed),
        Some(Frame::RequestHead(head)) => serve_request(conn, head, registry, config),
        Some(other) => Err(protocol_error(&format!(
            "expected a request, got {other:?}"
        ))),
    }
}

fn protocol_error(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

/// Checks that the peer is this Apache: its user, then the secret token.
fn greet(conn: &mut Connection, config: &ServerConfig) -> io::Result<Turn> {
    let uid = peer_uid(&conn.stream)?;
    if uid != config.allowed_uid && uid != 0 {
        log::warn!("daemon: refused a connection from uid {uid}: only Apache's user may connect");
        return Ok(Turn::Closed);
    }
    match conn.read_frame()? {
        Some(Frame::Hello { version, token })
            if version == PROTOCOL_VERSION && token == config.token =>
        {
            conn.send(&Frame::Welcome {
                pid: std::process::id(),
            })?;
            conn.greeted = true;
            Ok(Turn::Again)
        }
        Some(Frame::Hello { version, .. }) if version != PROTOCOL_VERSION => Err(protocol_error(
            &format!("the Apache child speaks protocol {version}, this daemon {PROTOCOL_VERSION}"),
        )),
        _ => {
            log::warn!("daemon: refused a connection that did not present this Apache's token");
            Ok(Turn::Closed)
        }
    }
}

/// The user on the other end of a UNIX socket, as the kernel reports it.
fn peer_uid(stream: &UnixStream) -> io::Result<u32> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: SO_PEERCRED fills a `ucred` of the length given.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&raw mut cred).cast(),
            &mut len,
        )
    };
    if rc == 0 {
        Ok(cred.uid)
    } else {
        Err(io::Error::last_os_error())
    }
}

fn serve_request(
    conn: &mut Connection,
    head: Box<RequestHead>,
    registry: &Registry,
    config: &ServerConfig,
) -> io::Result<Turn> {
    let app = match registry.get(head.app) {
        Ok(app) => app,
        Err(reason) => {
            conn.send(&failed(500, &reason))?;
            return Ok(Turn::Again);
        }
    };
    let request = DaemonRequest::new(conn, head);
    let body = match app.handle(&request.abi_request()) {
        Handled::Answered(body) => body,
        Handled::Stopped => {
            request.send(&failed(
                503,
                "the application is shutting down in this daemon",
            ))?;
            return Ok(Turn::Again);
        }
        Handled::Failed => {
            let status = request.body_failure().unwrap_or(500);
            request.send(&failed(
                status,
                "the application failed to answer (its message precedes this one)",
            ))?;
            return Ok(Turn::Again);
        }
    };
    let (status, headers) = match request.take_head() {
        Ok(head) => head,
        Err(problem) => {
            request.send(&failed(
                500,
                &format!("the application sent a response the host refuses: {problem}"),
            ))?;
            return Ok(Turn::Again); // `body` is closed as it drops
        }
    };
    request.send(&Frame::ResponseHead { status, headers })?;
    let Some(mut body) = body else {
        request.send(&Frame::ResponseEnd)?;
        return Ok(Turn::Again);
    };
    let max_chunk = config.limits.max_body_chunk as usize;
    loop {
        let frame = match body.next() {
            BodyPiece::Data(data) => {
                for piece in data.chunks(max_chunk) {
                    request.send(&Frame::ResponseBody(Bytes::copy_from_slice(piece)))?;
                }
                continue;
            }
            BodyPiece::Flush => Frame::Flush,
            BodyPiece::End => Frame::ResponseEnd,
            BodyPiece::Failed => Frame::ResponseAbort {
                reason: Bytes::from_static(b"the application failed while producing its body"),
            },
        };
        let last = !matches!(frame, Frame::Flush);
        request.send(&frame)?;
        if last {
            return Ok(Turn::Again);
        }
    }
}

fn failed(status: u16, reason: &str) -> Frame {
    Frame::Failed {
        status,
        reason: Bytes::copy_from_slice(reason.as_bytes()),
    }
}
