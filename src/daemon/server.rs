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
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use std::time::Instant;

use bytes::Bytes;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use rustapp_daemon_protocol::{Frame, Limits, PROTOCOL_VERSION, RequestHead, TOKEN_LEN, UserQuery};

use super::connection::Connection;
use super::host::DaemonRequest;
use crate::app::{AppInstance, BodyPiece, Handled, UserQuestion};

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
    pub(crate) recycle: Recycle,
    /// A request running longer ends this process (its Apache child has answered 504).
    pub(crate) request_timeout: Duration,
    /// A request that waited longer for a worker is answered 503 without running.
    pub(crate) queue_timeout: Duration,
}

/// When a daemon process retires so that a fresh one replaces it.
#[derive(Clone, Default)]
pub(crate) struct Recycle {
    pub(crate) maximum_requests: Option<u64>,
    pub(crate) inactivity_timeout: Option<Duration>,
    /// How long requests still running may take once retiring has begun.
    pub(crate) graceful_timeout: Duration,
    /// The same when Apache stops.
    pub(crate) shutdown_timeout: Duration,
}

/// Why `serve` returned: the process retires and its supervisor starts another.
pub(crate) struct Retired {
    pub(crate) reason: String,
}

/// What the poller and the workers share.
#[derive(Default)]
struct Activity {
    served: AtomicU64,
    /// Connections handed to workers and not yet given back or closed.
    outstanding: AtomicUsize,
    /// When the last request ended, in milliseconds since the server started.
    last_request_ms: AtomicU64,
    /// For each worker, since when it has been busy (milliseconds since the server started,
    /// plus one), or 0 when idle.
    busy_since_ms: Vec<AtomicU64>,
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
    /// The library file, and which file it was when the application started.
    library: Option<PathBuf>,
    loaded: OnceLock<Option<FileIdentity>>,
}

/// Enough to tell that a file at a path was replaced (a new file renamed over it, or rewritten).
#[derive(Clone, Copy, PartialEq, Eq)]
struct FileIdentity {
    device: u64,
    inode: u64,
    modified_ns: i64,
}

fn identity(path: &PathBuf) -> Option<FileIdentity> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    Some(FileIdentity {
        device: meta.dev(),
        inode: meta.ino(),
        modified_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
    })
}

impl LazyApp {
    pub(crate) fn new(start: StartFn, library: Option<PathBuf>, preload: bool) -> LazyApp {
        let app = LazyApp {
            start,
            instance: OnceLock::new(),
            library,
            loaded: OnceLock::new(),
        };
        if preload {
            let _ = app.get();
        }
        app
    }

    fn get(&self) -> Result<&AppInstance, &str> {
        match self.instance.get_or_init(|| {
            let _ = self.loaded.set(self.library.as_ref().and_then(identity));
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

    /// A library of a started application whose file is no longer the one loaded.
    fn replaced_library(&self) -> Option<&PathBuf> {
        self.apps.iter().find_map(|app| {
            let (path, Some(Some(loaded))) = (app.library.as_ref()?, app.loaded.get()) else {
                return None;
            };
            (identity(path).as_ref() != Some(loaded)).then_some(path)
        })
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

/// Serves connections from `listener` until the process should retire (or the listener fails).
/// Blocks the calling thread, which becomes the poller.
pub(crate) fn serve(
    listener: UnixListener,
    registry: Arc<Registry>,
    config: ServerConfig,
) -> io::Result<Retired> {
    let mut poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKE)?);
    listener.set_nonblocking(true)?;
    let listener_fd = listener.as_raw_fd();
    poll.registry()
        .register(&mut SourceFd(&listener_fd), LISTENER, Interest::READABLE)?;

    let epoch = Instant::now();
    let activity = Arc::new(Activity {
        busy_since_ms: (0..config.threads.max(1))
            .map(|_| AtomicU64::new(0))
            .collect(),
        ..Activity::default()
    });
    let (ready, to_workers) = mpsc::channel::<Connection>();
    let to_workers = Arc::new(Mutex::new(to_workers));
    let (returned, from_workers) = mpsc::channel::<Connection>();
    for n in 0..config.threads.max(1) {
        let (to_workers, returned, waker) = (to_workers.clone(), returned.clone(), waker.clone());
        let (registry, config, activity) = (registry.clone(), config.clone(), activity.clone());
        std::thread::Builder::new()
            .name(format!("rustapp-daemon-{n}"))
            .spawn(move || {
                work(
                    n,
                    &to_workers,
                    &returned,
                    &waker,
                    &registry,
                    &config,
                    &activity,
                    epoch,
                )
            })?;
    }
    let hand_over = |mut conn: Connection| {
        conn.ready_at = Some(Instant::now());
        activity.outstanding.fetch_add(1, Ordering::AcqRel);
        let _ = ready.send(conn);
    };

    let mut idle: HashMap<Token, Connection> = HashMap::new();
    let mut next_token = FIRST_CONNECTION;
    let mut events = Events::with_capacity(256);
    // Set once the process starts retiring: why, and since when.
    let mut retiring: Option<(String, Instant)> = None;
    loop {
        if let Err(e) = poll.poll(&mut events, Some(Duration::from_secs(1))) {
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        for event in &events {
            match event.token() {
                LISTENER if retiring.is_none() => loop {
                    match listener.accept() {
                        Ok((stream, _)) => hand_over(Connection::new(stream, config.limits)),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => {
                            log::error!("daemon: accepting a connection failed: {e}");
                            break;
                        }
                    }
                },
                LISTENER => {}
                WAKE => {}
                token => {
                    if let Some(conn) = idle.remove(&token) {
                        let fd = conn.stream.as_raw_fd();
                        let _ = poll.registry().deregister(&mut SourceFd(&fd));
                        hand_over(conn);
                    }
                }
            }
        }
        // Connections the workers are done with: idle until their next request.
        for mut conn in from_workers.try_iter() {
            activity.outstanding.fetch_sub(1, Ordering::AcqRel);
            if retiring.is_some() {
                say_goodbye(conn);
            } else if conn.has_buffered_input() {
                hand_over(conn);
            } else {
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
        if let Some(stuck) = overdue_request(&activity, &config, epoch) {
            // Its Apache child has answered 504 already; the thread cannot be stopped from
            // outside, so the process ends and its supervisor starts another.
            return Err(io::Error::other(format!(
                "a request ran for {} s, past its request-timeout of {} s",
                stuck.as_secs(),
                config.request_timeout.as_secs()
            )));
        }
        match &retiring {
            None => {
                if let Some(reason) = reason_to_retire(&config.recycle, &activity, &registry, epoch)
                {
                    log::info!("daemon process {} retires: {reason}", std::process::id());
                    let _ = poll.registry().deregister(&mut SourceFd(&listener_fd));
                    for (_, conn) in idle.drain() {
                        say_goodbye(conn);
                    }
                    retiring = Some((reason, Instant::now()));
                }
            }
            Some((reason, since)) => {
                let running = activity.outstanding.load(Ordering::Acquire);
                if running == 0 {
                    return Ok(Retired {
                        reason: reason.clone(),
                    });
                }
                let limit = if super::os::STOP_REQUESTED.load(Ordering::Acquire) {
                    config.recycle.shutdown_timeout
                } else {
                    config.recycle.graceful_timeout
                };
                if since.elapsed() > limit {
                    return Ok(Retired {
                        reason: format!(
                            "{reason}; {running} requests still running at its graceful-timeout were cut off"
                        ),
                    });
                }
            }
        }
    }
}

/// How long the longest-running request has run, if past `request-timeout` (plus a second, so
/// the Apache child's 504 goes out before the process ends).
fn overdue_request(activity: &Activity, config: &ServerConfig, epoch: Instant) -> Option<Duration> {
    let now = epoch.elapsed().as_millis() as u64 + 1;
    let longest = activity
        .busy_since_ms
        .iter()
        .map(|since| since.load(Ordering::Acquire))
        .filter(|&since| since != 0)
        .map(|since| Duration::from_millis(now.saturating_sub(since)))
        .max()?;
    (longest > config.request_timeout + Duration::from_secs(1)).then_some(longest)
}

fn reason_to_retire(
    recycle: &Recycle,
    activity: &Activity,
    registry: &Registry,
    epoch: Instant,
) -> Option<String> {
    if super::os::STOP_REQUESTED.load(Ordering::Acquire) {
        return Some("Apache is stopping".to_owned());
    }
    if super::os::RETIRE_REQUESTED.load(Ordering::Acquire) {
        return Some("Apache is restarting; the next generation's processes take over".to_owned());
    }
    let served = activity.served.load(Ordering::Acquire);
    if let Some(max) = recycle.maximum_requests {
        if served >= max {
            return Some(format!(
                "it served {served} requests (maximum-requests={max})"
            ));
        }
    }
    if let Some(limit) = recycle.inactivity_timeout {
        let last = Duration::from_millis(activity.last_request_ms.load(Ordering::Acquire));
        if activity.outstanding.load(Ordering::Acquire) == 0
            && epoch.elapsed().saturating_sub(last) > limit
        {
            return Some(format!(
                "no request for {} s (inactivity-timeout)",
                limit.as_secs()
            ));
        }
    }
    registry
        .replaced_library()
        .map(|path| format!("its application library {} was replaced", path.display()))
}

/// Closes an idle connection, telling the Apache child that nothing sent on it will be read.
fn say_goodbye(mut conn: Connection) {
    let _ = conn.stream.set_write_timeout(Some(Duration::from_secs(1)));
    let _ = conn.send(&Frame::Goodbye);
}

/// A worker: serves one turn of whichever connection is ready, then gives it back.
#[allow(clippy::too_many_arguments)] // one worker's share of the server, passed once
fn work(
    index: usize,
    to_workers: &Mutex<Receiver<Connection>>,
    returned: &Sender<Connection>,
    waker: &Waker,
    registry: &Registry,
    config: &ServerConfig,
    activity: &Activity,
    epoch: Instant,
) {
    loop {
        let next = to_workers.lock().map(|r| r.recv());
        let Ok(Ok(mut conn)) = next else { return };
        let busy = &activity.busy_since_ms[index];
        busy.store(epoch.elapsed().as_millis() as u64 + 1, Ordering::Release);
        let outcome = serve_turn(&mut conn, registry, config);
        busy.store(0, Ordering::Release);
        if matches!(outcome, Ok(Turn::Served)) {
            activity.served.fetch_add(1, Ordering::AcqRel);
            activity
                .last_request_ms
                .store(epoch.elapsed().as_millis() as u64, Ordering::Release);
        }
        match outcome {
            Ok(Turn::Again | Turn::Served) => {
                if returned.send(conn).is_err() || waker.wake().is_err() {
                    return;
                }
            }
            Ok(Turn::Closed) => {
                activity.outstanding.fetch_sub(1, Ordering::AcqRel);
            }
            Err(e) => {
                activity.outstanding.fetch_sub(1, Ordering::AcqRel);
                log::info!("daemon: closing a connection: {e}");
            }
        }
        // The poller may be waiting for this count to reach zero.
        let _ = waker.wake();
    }
}

enum Turn {
    /// Keep the connection for the next request.
    Again,
    /// A request was answered; keep the connection.
    Served,
    Closed,
}

fn serve_turn(
    conn: &mut Connection,
    registry: &Registry,
    config: &ServerConfig,
) -> io::Result<Turn> {
    conn.stream.set_read_timeout(Some(config.socket_timeout))?;
    if !conn.greeted {
        // An Apache child opens a connection to send a request at once: read it in this same
        // turn, so the time the connection waited for this worker counts for queue-timeout.
        // (A greeted peer that sends nothing holds this worker up to socket-timeout; only
        // Apache's user with this Apache's token gets this far.)
        if let Turn::Closed = greet(conn, config)? {
            return Ok(Turn::Closed);
        }
    }
    match conn.read_frame()? {
        None => Ok(Turn::Closed),
        Some(Frame::RequestHead(head)) => {
            serve_request(conn, head, registry, config).map(|_| Turn::Served)
        }
        Some(Frame::UserQuery(query)) => {
            answer_user_query(conn, *query, registry, config).map(|_| Turn::Served)
        }
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
    let uid = super::os::peer_uid(&conn.stream)?;
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

fn serve_request(
    conn: &mut Connection,
    head: Box<RequestHead>,
    registry: &Registry,
    config: &ServerConfig,
) -> io::Result<Turn> {
    if let Some(refusal) = queued_too_long(conn, config) {
        conn.send(&refusal)?;
        return Ok(Turn::Again);
    }
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
    request.queue(&Frame::ResponseHead { status, headers })?;
    let Some(mut body) = body else {
        request.send(&Frame::ResponseEnd)?;
        return Ok(Turn::Again);
    };
    let max_chunk = config.limits.max_body_chunk as usize;
    loop {
        let frame = match body.next() {
            BodyPiece::Data(data) => {
                for piece in data.chunks(max_chunk) {
                    request.queue(&Frame::ResponseBody(Bytes::copy_from_slice(piece)))?;
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

/// Asks an application's user store, for an Apache child authenticating a request.
fn answer_user_query(
    conn: &mut Connection,
    query: UserQuery,
    registry: &Registry,
    config: &ServerConfig,
) -> io::Result<()> {
    if let Some(refusal) = queued_too_long(conn, config) {
        return conn.send(&refusal);
    }
    let Some(question) = UserQuestion::from_wire(query.question) else {
        return Err(protocol_error(&format!(
            "unknown user store question {}",
            query.question
        )));
    };
    let app = match registry.get(query.head.app) {
        Ok(app) => app,
        Err(reason) => return conn.send(&failed(500, &reason)),
    };
    let request = DaemonRequest::without_body(conn, Box::new(query.head));
    let answer = app.ask_users(question, &request.abi_request(), &query.user, &query.secret);
    let frame = match answer {
        Some(answer) => {
            let (code, values) = answer.into_code();
            Frame::UserAnswer { code, values }
        }
        None => failed(503, "the application is shutting down in this daemon"),
    };
    request.send(&frame)
}

/// A 503 for a request or query that waited past the group's queue-timeout for a thread.
fn queued_too_long(conn: &Connection, config: &ServerConfig) -> Option<Frame> {
    let waited = conn
        .ready_at
        .map(|t| t.elapsed())
        .filter(|w| *w > config.queue_timeout)?;
    Some(failed(
        503,
        &format!(
            "the request waited {} s for a free thread, past the group's queue-timeout of {} s",
            waited.as_secs(),
            config.queue_timeout.as_secs()
        ),
    ))
}

fn failed(status: u16, reason: &str) -> Frame {
    Frame::Failed {
        status,
        reason: Bytes::copy_from_slice(reason.as_bytes()),
    }
}
