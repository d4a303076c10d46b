//! In an Apache child: a request for an application in a daemon group goes over the group's
//! socket, and the answer comes back to the client as if the application were embedded.
//! Everything the daemon sends is checked again here: it runs as another user.

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use rustapp_daemon_protocol::{
    Frame, HeadFields, Limits, PROTOCOL_VERSION, PairsBuilder, RequestHead, UserQuery, encode,
    encode_request_head,
};

use super::connection::Connection;
use super::os::{self, monotonic_us, readable_now};
use super::request_body::{BodyFeed, BodyReads, request_trailers};
use super::runtime::GroupRuntime;
use crate::config::Alias;
use crate::ffi::{HttpStatus, Woke, log_request, wait_readable};
use crate::host::{
    BodyPiece, Exchange, SWITCHING_PROTOCOLS, StoreAnswer, UserQuestion, apache_level,
};
use crate::respond::{
    BodySource, Delivery, IdleLimit, deliver, overridden_error, relay, send_named_file,
};

/// How often one request is sent again after daemons retired the connections it was sent on.
const MAX_GOODBYES: usize = 8;

/// Serves `exchange` with `alias` in daemon `group`; `Err` is the status Apache answers with
/// (the reason is logged).
///
/// `delivery.idle` is the URL's stream-idle-timeout: it bounds, in place of the group's
/// request-timeout, how long the response may take to start and may then wait for more.
/// `buffer_limit`: up to how many bytes of the request body are read from the client before
/// the daemon is asked (so a slow upload holds no daemon thread); the rest of a larger body
/// streams to it as the application reads.
pub(crate) fn serve_via_daemon(
    exchange: &Exchange<'_>,
    alias: &Alias,
    group: &GroupRuntime,
    buffer_limit: u64,
    delivery: &Delivery<'_>,
) -> Result<(), HttpStatus> {
    if let (Some(limit), Some(figures)) = (group.config.queue_limit, &group.figures) {
        // This request is among them.
        let waiting = figures.waiting();
        if waiting > u64::from(limit) {
            log::error!(
                "{alias}: {waiting} requests wait for daemon group {}, past its queue-limit of {limit}; answering 503 (raise threads= or processes=, or queue-limit=, on RustAppDaemonProcess)",
                group.config.name
            );
            return Err(HttpStatus::SERVICE_UNAVAILABLE);
        }
    }
    let idle = delivery.idle;
    let (feed, inline) = BodyFeed::for_request(exchange, buffer_limit)?;
    let head = encoded_head(exchange, alias, idle, inline);
    let wait_limit = idle.unwrap_or(group.config.request_timeout);
    let limit = WaitLimit {
        duration: wait_limit,
        name: if idle.is_some() {
            "the URL's stream-idle-timeout"
        } else {
            "its request-timeout"
        },
    };
    let (mut conn, answer, reads) = send_and_await(exchange, &feed, alias, group, &head, limit)?;
    delivery.answered_by.set(conn.peer_pid);
    let name = described(group, &conn);
    let Frame::ResponseHead { status, headers } = answer else {
        log::error!(
            "daemon group {name} sent {answer:?} instead of a response head; answering 502"
        );
        return Err(HttpStatus::BAD_GATEWAY);
    };
    // The daemon runs as another user: its head is checked again here. A 101 is accepted
    // only for a request that offered an upgrade, naming a protocol it offered.
    if status == SWITCHING_PROTOCOLS {
        exchange.accept_upgrade_in_daemon();
    }
    exchange.set_status(u32::from(status));
    for (header, value) in &headers {
        exchange.add_header(header, value);
    }
    let head = exchange.finish_head().map_err(|problem| {
        log::error!(
            "{alias} in daemon group {name} sent a response Apache refuses: {problem}; answering 500"
        );
        HttpStatus::INTERNAL_SERVER_ERROR
    })?;
    if let Some(status) = overridden_error(&head, delivery.error_override) {
        // The connection, its body frames unread, is dropped: the daemon drops the body.
        return Err(status);
    }
    if let Some(named) = exchange.sendfile() {
        return send_file_via_daemon(conn, exchange, alias, group, &named, &head, delivery);
    }
    let request = exchange.request();
    if head.status == SWITCHING_PROTOCOLS {
        return switch_via_daemon(conn, exchange, alias, group, idle);
    }
    // The daemon ends a response that waits past its limit itself; this only catches a
    // daemon that fell silent.
    let silence = IdleLimit(Some(
        group
            .config
            .socket_timeout
            .max(wait_limit + Duration::from_secs(2)),
    ));
    if request.is_head() {
        // The connection is dropped: its body frames are not wanted.
        deliver(request, alias, head, None, silence);
        return Ok(());
    }
    let mut body = DaemonBody {
        conn: &mut conn,
        exchange,
        feed: &feed,
        group,
        current: Bytes::new(),
        in_sync: false,
        waited: false,
        // A read the daemon asked for before its head, still waiting for the client, is
        // answered while the body streams.
        reads,
    };
    deliver(request, alias, head, Some(&mut body), silence);
    if body.in_sync {
        group.give_back(conn);
    }
    Ok(())
}

/// The application in the daemon named a file for Apache to send (`X-Sendfile`): the daemon
/// opened it with its own rights and passed it with the head (a daemon's user may read what
/// Apache's may not); `ResponseEnd` follows, and the connection serves again.
fn send_file_via_daemon(
    mut conn: Connection,
    exchange: &Exchange<'_>,
    alias: &Alias,
    group: &GroupRuntime,
    named: &[u8],
    head: &crate::host::ResponseHead,
    delivery: &Delivery<'_>,
) -> Result<(), HttpStatus> {
    let file = conn.take_received_fd();
    let name = Described {
        group: &group.config.name,
        pid: conn.peer_pid,
    };
    loop {
        match conn.read_frame() {
            Ok(Some(Frame::ResponseEnd)) => {
                group.give_back(conn);
                break;
            }
            Ok(Some(Frame::Log { level, message })) => relay_log(exchange, level, &message),
            // Out of step: the connection is not used again.
            _ => break,
        }
    }
    let Some(file) = file else {
        log::error!(
            "{alias} in daemon group {name} named a file to send but the daemon passed none; answering 502"
        );
        return Err(HttpStatus::BAD_GATEWAY);
    };
    let request = exchange.request();
    send_named_file(
        request,
        alias,
        named,
        Some(file),
        delivery.sendfile_roots,
        head.status,
    )
}

/// The application in the daemon took the connection over: `Switched` brings the socket it
/// reads and writes (passed as a descriptor), which is relayed to the client until either
/// side closes, with no hop through the daemon. The connection to the daemon stays open,
/// unused, for as long: its closing tells the daemon the tunnel is over.
fn switch_via_daemon(
    mut conn: Connection,
    exchange: &Exchange<'_>,
    alias: &Alias,
    group: &GroupRuntime,
    idle: Option<Duration>,
) -> Result<(), HttpStatus> {
    loop {
        match conn.read_frame() {
            Ok(Some(Frame::Switched)) => break,
            Ok(Some(Frame::Log { level, message })) => relay_log(exchange, level, &message),
            other => {
                log::error!(
                    "daemon group {} answered 101 but then {other:?} instead of switching; answering 502",
                    described(group, &conn)
                );
                return Err(HttpStatus::BAD_GATEWAY);
            }
        }
    }
    let Some(socket) = conn.take_received_fd() else {
        log::error!(
            "daemon group {} switched without passing the application's socket; answering 502",
            described(group, &conn)
        );
        return Err(HttpStatus::BAD_GATEWAY);
    };
    let (protocol, socket) = (exchange.upgrade_protocol(), UnixStream::from(socket));
    relay(exchange.request(), alias, &protocol, &socket, idle);
    drop(conn);
    Ok(())
}

/// Asks the user store of `alias`, which runs in `group`, while Apache authenticates the
/// request. `None` when there is no answer (why is logged).
pub(crate) fn ask_via_daemon(
    exchange: &Exchange<'_>,
    alias: &Alias,
    group: &GroupRuntime,
    question: UserQuestion,
    user: &[u8],
    secret: &[u8],
) -> Option<StoreAnswer> {
    let query = Frame::UserQuery(Box::new(UserQuery {
        head: request_head(exchange, alias),
        question: question.wire(),
        user: Bytes::copy_from_slice(user),
        secret: Bytes::copy_from_slice(secret),
    }));
    let mut encoded = BytesMut::new();
    encode(&query, &mut encoded);
    let limit = WaitLimit {
        duration: group.config.request_timeout,
        name: "its request-timeout",
    };
    let feed = BodyFeed::Client(exchange);
    let (conn, answer, _) = send_and_await(exchange, &feed, alias, group, &encoded, limit).ok()?;
    match answer {
        Frame::UserAnswer { code, values } => {
            group.give_back(conn);
            Some(StoreAnswer::from_code(code, values))
        }
        other => {
            log::error!(
                "daemon group {} sent {other:?} instead of a user store's answer",
                described(group, &conn)
            );
            None
        }
    }
}

/// Sends `request` (an encoded request head or user query) and waits for the daemon's answer to it,
/// answering the application's body reads and relaying its log lines meanwhile, for no longer
/// than `limit`. The answer is the first other frame, on a connection back at its usual
/// socket-timeout, with the body read still waiting for the client, if one is; `Err` is the
/// status to answer with when there is none (logged).
fn send_and_await(
    exchange: &Exchange<'_>,
    feed: &BodyFeed<'_, '_>,
    alias: &Alias,
    group: &GroupRuntime,
    request: &[u8],
    limit: WaitLimit,
) -> Result<(Connection, Frame, BodyReads), HttpStatus> {
    let name = Described {
        group: &group.config.name,
        pid: None,
    };
    let mut conn = group
        .send_request(request, || connect(group))
        .map_err(|e| unreachable(group, &name, &e))?;
    let mut goodbyes = 0;

    // No longer than the limit (the daemon replaces a process whose application does not
    // return from a call past it).
    let deadline = Instant::now() + limit.duration;
    let mut shortened = false;
    // The daemon may answer while a body read waits for the client (a bidirectional
    // stream's head comes before its first message).
    let mut reads = BodyReads::default();
    loop {
        let name = described(group, &conn);
        let left = deadline.saturating_duration_since(Instant::now());
        // Connections wait socket-timeout per read; only a nearer deadline shortens it (a
        // system call, so not on every request).
        let shorten = left < group.config.socket_timeout;
        if left.is_zero() || (shorten && conn.stream.set_read_timeout(Some(left)).is_err()) {
            log::error!(
                "{alias} in daemon group {name} ran past {} of {} s; answering 504",
                limit.name,
                limit.duration.as_secs()
            );
            return Err(HttpStatus::GATEWAY_TIME_OUT);
        }
        shortened |= shorten;
        let body_read_failed = || {
            log::error!(
                "daemon group {name} went away while reading {alias}'s request body; answering 502"
            );
            HttpStatus::BAD_GATEWAY
        };
        if reads.waiting() {
            reads
                .answer_kept(&mut conn, feed)
                .map_err(|_| body_read_failed())?;
        }
        if reads.waiting() {
            match wait_for_daemon_or_client(exchange, &conn, left) {
                Waited::Daemon => {}
                Waited::Client | Waited::Nothing => continue,
                Waited::ClientGone => {
                    log::debug!("the client went away while {alias} waited for its body");
                    return Err(HttpStatus::BAD_REQUEST);
                }
            }
        }
        let answer = match conn.read_frame() {
            Ok(Some(Frame::ReadBody { max })) => {
                reads
                    .asked(&mut conn, feed, max)
                    .map_err(|_| body_read_failed())?;
                continue;
            }
            Ok(Some(Frame::Log { level, message })) => {
                relay_log(exchange, level, &message);
                continue;
            }
            // The daemon retired this connection without reading the request: send it again,
            // on another connection (a fresh daemon takes over through the group's socket).
            Ok(Some(Frame::Goodbye)) if goodbyes < MAX_GOODBYES => {
                goodbyes += 1;
                conn = group
                    .send_request(request, || connect(group))
                    .map_err(|e| unreachable(group, &name, &e))?;
                continue;
            }
            Ok(Some(Frame::Failed { status, reason })) => {
                log::error!(
                    "{alias} in daemon group {name}: {}; answering {status}",
                    String::from_utf8_lossy(&reason)
                );
                if restore_timeout(&conn, group, shortened) {
                    group.give_back(conn);
                }
                return Err(HttpStatus::error_or(status, HttpStatus::BAD_GATEWAY));
            }
            Ok(Some(answer)) => answer,
            Ok(None) => {
                log::error!(
                    "daemon group {name} closed the connection before answering {alias}: its process probably died (its exit is logged); answering 502"
                );
                return Err(HttpStatus::BAD_GATEWAY);
            }
            Err(e) if is_timeout(&e) && Instant::now() < deadline => {
                log::error!(
                    "daemon group {name} did not answer {alias} within its socket-timeout of {} s; answering 504",
                    group.config.socket_timeout.as_secs()
                );
                return Err(HttpStatus::GATEWAY_TIME_OUT);
            }
            // The deadline passed while waiting: the next turn of the loop answers 504.
            Err(e) if is_timeout(&e) => continue,
            Err(e) => {
                log::error!(
                    "daemon group {name} connection failed before answering {alias}: {e}; answering 502"
                );
                return Err(HttpStatus::BAD_GATEWAY);
            }
        };
        // What follows the answer (a body) streams under the socket-timeout alone.
        if !restore_timeout(&conn, group, shortened) {
            return Err(HttpStatus::BAD_GATEWAY);
        }
        return Ok((conn, answer, reads));
    }
}

/// What ended a wait for the daemon's next frame or the client's next bytes.
enum Waited {
    Daemon,
    Client,
    ClientGone,
    Nothing,
}

/// Waits up to `limit` for the daemon to send a frame or the client to send more body.
fn wait_for_daemon_or_client(
    exchange: &Exchange<'_>,
    conn: &Connection,
    limit: Duration,
) -> Waited {
    if conn.has_buffered_frame() {
        return Waited::Daemon;
    }
    let request = exchange.request();
    let daemon = conn.stream.as_raw_fd();
    match wait_readable(
        daemon,
        request.client_socket_fd(),
        request.input_fd(),
        limit,
    ) {
        Woke::Ready if readable_now(daemon) => Waited::Daemon,
        Woke::Ready => Waited::Client,
        Woke::ClientGone => Waited::ClientGone,
        Woke::TimedOut => Waited::Nothing,
    }
}

/// How long a request may wait for its answer, and what the admin calls that limit.
#[derive(Clone, Copy)]
struct WaitLimit {
    duration: Duration,
    name: &'static str,
}

/// Puts a connection whose read timeout was shortened back to the group's socket-timeout.
fn restore_timeout(conn: &Connection, group: &GroupRuntime, shortened: bool) -> bool {
    !shortened
        || conn
            .stream
            .set_read_timeout(Some(group.config.socket_timeout))
            .is_ok()
}

/// No daemon could be reached: 503, and why.
fn unreachable(
    group: &GroupRuntime,
    name: &dyn std::fmt::Display,
    error: &io::Error,
) -> HttpStatus {
    log::error!(
        "daemon group {name} is not reachable at {}: {error}; answering 503",
        group.socket.display()
    );
    HttpStatus::SERVICE_UNAVAILABLE
}

/// `'shop' (process 1234)`: the group, and the daemon process at the other end if known.
/// Formatted only when a line is logged, not on every request.
struct Described<'a> {
    group: &'a str,
    pid: Option<u32>,
}

impl std::fmt::Display for Described<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.pid {
            Some(pid) => write!(f, "'{}' (process {pid})", self.group),
            None => write!(f, "'{}'", self.group),
        }
    }
}

fn described<'a>(group: &'a GroupRuntime, conn: &Connection) -> Described<'a> {
    Described {
        group: &group.config.name,
        pid: conn.peer_pid,
    }
}

/// The request's own fields, borrowed from Apache's request.
fn head_fields<'r>(exchange: &Exchange<'r>, alias: &Alias) -> HeadFields<'r> {
    let r = exchange.request();
    HeadFields {
        app: alias.index.wire(),
        method: r.method(),
        uri: r.unparsed_uri(),
        protocol: r.protocol(),
        script_name: exchange.script_name().as_bytes(),
        path_info: r.path_info(),
        query_string: r.query_string(),
        content_length: exchange.content_length(),
        idle_timeout_ms: 0,
        sent_at_us: monotonic_us(),
        body_follows: false,
    }
}

/// The request's head frame (an upgradable one when it offers an upgrade), encoded straight
/// from Apache's request and tables, and after it the whole body when it is small and all
/// here (`inline`), which saves the daemon asking for it; it is all sent again as it is when a
/// retiring daemon did not read it.
fn encoded_head(
    exchange: &Exchange<'_>,
    alias: &Alias,
    idle: Option<Duration>,
    inline: Option<Vec<u8>>,
) -> BytesMut {
    let fields = HeadFields {
        idle_timeout_ms: idle.map_or(0, |d| u32::try_from(d.as_millis()).unwrap_or(u32::MAX)),
        body_follows: inline.is_some(),
        ..head_fields(exchange, alias)
    };
    let mut out = BytesMut::with_capacity(ENCODED_HEAD_CAPACITY);
    encode_request_head(
        &mut out,
        &fields,
        |list| exchange.each_header(|name, value| list.pair(name, value)),
        |list| exchange.each_var(|name, value| list.pair(name, value)),
        exchange.upgrade_offer(),
    );
    if let Some(body) = inline {
        if !body.is_empty() {
            encode(&Frame::RequestBody(Bytes::from(body)), &mut out);
        }
        if let Some(trailers) = request_trailers(exchange) {
            encode(&trailers, &mut out);
        }
        encode(&Frame::RequestBodyEnd, &mut out);
    }
    out
}

/// Room for a typical request head, so that encoding one rarely grows its buffer.
const ENCODED_HEAD_CAPACITY: usize = 2048;

/// The request's head as a value (for a user query).
fn request_head(exchange: &Exchange<'_>, alias: &Alias) -> RequestHead {
    let fields = head_fields(exchange, alias);
    let copy = Bytes::copy_from_slice;
    let mut headers = PairsBuilder::default();
    exchange.each_header(|n, v| headers.push(n, v));
    let mut vars = PairsBuilder::default();
    exchange.each_var(|n, v| vars.push(n, v));
    RequestHead {
        app: fields.app,
        method: copy(fields.method),
        uri: copy(fields.uri),
        protocol: copy(fields.protocol),
        script_name: copy(fields.script_name),
        path_info: copy(fields.path_info),
        query_string: copy(fields.query_string),
        content_length: fields.content_length,
        idle_timeout_ms: fields.idle_timeout_ms,
        sent_at_us: fields.sent_at_us,
        body_follows: false,
        headers: headers.finish(),
        vars: vars.finish(),
    }
}

/// Opens and greets a new connection, waiting up to the group's connect-timeout while the
/// daemons' backlog is full.
fn connect(group: &GroupRuntime) -> io::Result<Connection> {
    let deadline = Instant::now() + group.config.connect_timeout;
    let stream = loop {
        match UnixStream::connect(&group.socket) {
            Ok(stream) => break stream,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => return Err(e),
        }
    };
    os::widen_send_buffer(&stream);
    stream.set_read_timeout(Some(group.config.socket_timeout))?;
    stream.set_write_timeout(Some(group.config.socket_timeout))?;
    let mut conn = Connection::new(stream, Limits::default());
    conn.send(&Frame::Hello {
        version: PROTOCOL_VERSION,
        token: group.token,
    })?;
    match conn.read_frame()? {
        Some(Frame::Welcome { pid }) => {
            conn.peer_pid = Some(pid);
            Ok(conn)
        }
        _ => Err(io::Error::other("the daemon did not accept the connection")),
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn relay_log(exchange: &Exchange<'_>, level: u8, message: &[u8]) {
    log_request(
        exchange.request(),
        apache_level(u32::from(level)),
        &String::from_utf8_lossy(message),
    );
}

/// The response body as the daemon sends it.
struct DaemonBody<'c, 'e, 'r> {
    conn: &'c mut Connection,
    exchange: &'e Exchange<'r>,
    feed: &'e BodyFeed<'e, 'r>,
    group: &'e GroupRuntime,
    current: Bytes,
    /// Whether the response ended on a frame boundary, so the connection can serve again.
    in_sync: bool,
    /// Whether the pipeline just waited for the socket (so the next read finds data).
    waited: bool,
    /// The daemon's body reads: one the client sent nothing for yet waits while the
    /// response goes on.
    reads: BodyReads,
}

impl BodySource for DaemonBody<'_, '_, '_> {
    fn next_piece(&mut self) -> BodyPiece<'_> {
        // The piece Apache has sent by now: let go, so that the connection's read buffer is
        // its only owner again and takes the next piece without a fresh allocation.
        self.current = Bytes::new();
        loop {
            if self.reads.answer_kept(self.conn, self.feed).is_err() {
                return BodyPiece::Failed;
            }
            let daemon = self.conn.stream.as_raw_fd();
            if self.reads.waiting() {
                // Woken by the client or by the daemon: only a frame there is read.
                if !self.conn.has_buffered_frame() && !readable_now(daemon) {
                    return BodyPiece::PendingInput(daemon);
                }
            } else if !self.conn.has_buffered_frame() && !self.waited {
                // Nothing buffered: the pipeline waits for the daemon (watching the client).
                self.waited = true;
                return BodyPiece::Pending(daemon);
            }
            self.waited = false;
            match self.conn.read_frame() {
                Ok(Some(Frame::ResponseBody(data))) => {
                    self.current = data;
                    return BodyPiece::Data(&self.current);
                }
                Ok(Some(Frame::Flush)) => return BodyPiece::Flush,
                Ok(Some(Frame::ResponseEnd)) => {
                    // A body read left unanswered would be answered on the next request's
                    // time: the daemon drops the connection then, and so does this side.
                    self.in_sync = !self.reads.waiting();
                    return BodyPiece::End;
                }
                Ok(Some(Frame::ResponseAbort { reason })) => {
                    self.in_sync = true;
                    log::error!(
                        "daemon group {}: {}",
                        described(self.group, self.conn),
                        String::from_utf8_lossy(&reason)
                    );
                    return BodyPiece::Failed;
                }
                Ok(Some(Frame::Log { level, message })) => {
                    relay_log(self.exchange, level, &message)
                }
                Ok(Some(Frame::ReadBody { max })) => {
                    if self.reads.asked(self.conn, self.feed, max).is_err() {
                        return BodyPiece::Failed;
                    }
                }
                Ok(Some(Frame::ResponseTrailers(fields))) => {
                    for (name, value) in &fields {
                        // Checked again here: the daemon runs as another user.
                        self.exchange.add_trailer(name, value);
                    }
                }
                other => {
                    let what = match other {
                        Ok(None) => "closed the connection: its process probably died".to_owned(),
                        Ok(Some(frame)) => format!("sent {frame:?} inside a body"),
                        Err(e) if is_timeout(&e) => {
                            "fell silent past its socket-timeout".to_owned()
                        }
                        Err(e) => e.to_string(),
                    };
                    log::error!(
                        "daemon group {} {what}, in the middle of a response",
                        described(self.group, self.conn)
                    );
                    return BodyPiece::Failed;
                }
            }
        }
    }

    /// The client went away (or this Apache child stops): the daemon drops the response at
    /// once, and this connection, out of step now, is not used again.
    fn abandon(&mut self) {
        self.in_sync = false;
        let _ = self
            .conn
            .stream
            .set_write_timeout(Some(Duration::from_secs(1)));
        let _ = self.conn.send(&Frame::Cancel);
    }
}
