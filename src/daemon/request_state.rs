//! The application ABI's host functions inside a daemon: the request comes from a
//! `RequestHead` frame, body reads become `ReadBody` round trips to the Apache child (or reads
//! of the spooled body's file it hands over), logs
//! become `Log` frames, and the response head is collected to be sent as one frame.

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use bytes::Bytes;
use rustapp::abi::{self, HostRequest, HostV1, RequestV1, Str};
use rustapp_daemon_protocol::{Frame, RequestHead};

use super::connection::Connection;
use super::os::readable_now;
use crate::ffi::ReadNow;
use crate::host::{
    HeadBuilder, HeaderUse, InstanceContext, RequestState, ResponseHead, WholeBodySlot,
    check_trailer, host_table, socket_pair,
};

/// The host's state for one request being served by a daemon. It owns the connection the
/// request came on for as long as the request lasts, so that a response that waits can be put
/// aside with it (and resumed on another thread).
pub(crate) struct DaemonRequest {
    conn: RefCell<Connection>,
    head: Box<RequestHead>,
    /// The protocols the request offers to switch to, if it does.
    upgrade_offer: Option<Bytes>,
    progress: RefCell<Progress>,
}

/// How much request body the daemon asks the Apache child for at once: applications often read
/// in small buffers, and each ask is a round trip.
const BODY_READ_AHEAD: usize = 256 * 1024;

/// What the request has done so far.
#[derive(Default)]
struct Progress {
    /// Request body received but not yet read by the application.
    pending: Bytes,
    /// The spooled body the Apache child handed over, while the application reads it.
    spooled: Option<SpooledBody>,
    head: HeadBuilder,
    /// The headers accepted, to be sent in the `ResponseHead` frame.
    headers: Vec<(Bytes, Bytes)>,
    body_ended: bool,
    /// The status the Apache child chose when it could not read the body (413, ...).
    body_failed: Option<u16>,
    /// A `ReadBody` was sent and not answered yet (the client had sent nothing more), and
    /// how much it asked for.
    asked: Option<usize>,
    /// The whole body follows the head unasked, and its end has not been read yet.
    body_follows: bool,
    /// The trailers the client sent after its body.
    request_trailers: Vec<(Bytes, Bytes)>,
    /// The response trailers the application gave, sent before the response's end.
    trailers: Vec<(Bytes, Bytes)>,
    /// The daemon's end of the connection the application took over.
    tunnel_end: Option<UnixStream>,
    /// The whole body the application handed over during `handle` (`set_body`).
    whole_body: WholeBodySlot<Bytes>,
}

impl DaemonRequest {
    /// Boxed: the application holds its address (the ABI's `HostRequest`) while it answers.
    pub(crate) fn new(conn: Connection, head: Box<RequestHead>) -> Box<DaemonRequest> {
        DaemonRequest::offering(conn, head, None)
    }

    /// A request that may offer to switch its connection to one of `upgrade_offer`.
    pub(crate) fn offering(
        conn: Connection,
        head: Box<RequestHead>,
        upgrade_offer: Option<Bytes>,
    ) -> Box<DaemonRequest> {
        let progress = Progress {
            head: upgrade_offer
                .as_deref()
                .map_or_else(HeadBuilder::default, HeadBuilder::offering),
            // A body sent with the head is read as though asked for, to its end.
            asked: head.body_follows.then_some(usize::MAX),
            body_follows: head.body_follows,
            ..Progress::default()
        };
        Box::new(DaemonRequest {
            conn: RefCell::new(conn),
            head,
            upgrade_offer,
            progress: RefCell::new(progress),
        })
    }

    /// The file the application asked Apache to send (`X-Sendfile`).
    pub(crate) fn sendfile(&self) -> Option<Vec<u8>> {
        self.progress.borrow().head.sendfile().map(<[u8]>::to_vec)
    }

    /// The daemon's end of the connection the application took over (after a 101).
    pub(crate) fn take_tunnel_end(&self) -> Option<UnixStream> {
        self.progress.borrow_mut().tunnel_end.take()
    }

    /// A request whose body the application does not get (its body reads as empty): one
    /// being authenticated, asked about by a user store query.
    pub(crate) fn without_body(conn: Connection, head: Box<RequestHead>) -> Box<DaemonRequest> {
        let request = DaemonRequest::new(conn, head);
        request.progress.borrow_mut().body_ended = true;
        request
    }

    /// The connection back, once the application is done with the request. What is left of
    /// a body sent with the head is read past first (it came in the same write, so it is
    /// there), so that the next request starts on a frame of its own.
    pub(crate) fn into_connection(self: Box<Self>) -> Connection {
        if self.progress.borrow().body_follows {
            let mut sink = [0u8; 16 * 1024];
            while let ReadNow::Read(1..) = self.read_body_from_child(&mut sink, true) {}
        }
        self.conn.into_inner()
    }

    /// The connection, between calls into the application.
    pub(crate) fn connection(&self) -> std::cell::RefMut<'_, Connection> {
        self.conn.borrow_mut()
    }

    /// The ABI view of the request; its strings borrow the decoded head.
    pub(crate) fn abi_request(&self) -> RequestV1 {
        let h = &self.head;
        RequestV1 {
            size: size_of::<RequestV1>() as u32,
            host_request: (self as *const DaemonRequest)
                .cast_mut()
                .cast::<HostRequest>(),
            method: Str::from_bytes(&h.method),
            uri: Str::from_bytes(&h.uri),
            protocol: Str::from_bytes(&h.protocol),
            script_name: Str::from_bytes(&h.script_name),
            path_info: Str::from_bytes(&h.path_info),
            query_string: Str::from_bytes(&h.query_string),
            content_length: h.content_length,
            upgrade: match &self.upgrade_offer {
                Some(offer) if self.progress.borrow().head.offered().is_some() => {
                    Str::from_bytes(offer)
                }
                _ => Str::EMPTY,
            },
        }
    }

    pub(crate) fn send(&self, frame: &Frame) -> io::Result<()> {
        self.conn.borrow_mut().send(frame)
    }

    /// Queues `frame`; it goes out with the next `send` (see `Connection::queue`).
    pub(crate) fn queue(&self, frame: &Frame) -> io::Result<()> {
        self.conn.borrow_mut().queue(frame)
    }

    /// The headers the application set (once its head was accepted).
    pub(crate) fn take_headers(&self) -> Vec<(Bytes, Bytes)> {
        std::mem::take(&mut self.progress.borrow_mut().headers)
    }

    fn header(&self, name: &[u8]) -> Option<&[u8]> {
        self.head
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    fn var(&self, name: &[u8]) -> Option<&[u8]> {
        self.head
            .vars
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
    }

    /// Reads request body into `buf`, asking the Apache child for more when none is pending;
    /// with `wait` false, `NotYet` when its answer has not come (the client sent nothing
    /// more yet: the child answers once it has).
    fn read_body_from_child(&self, buf: &mut [u8], wait: bool) -> ReadNow {
        let mut state = self.progress.borrow_mut();
        loop {
            if !state.pending.is_empty() {
                let n = state.pending.len().min(buf.len());
                buf[..n].copy_from_slice(&state.pending.split_to(n));
                return ReadNow::Read(n);
            }
            if let Some(spooled) = &mut state.spooled {
                match spooled.read(buf) {
                    Ok(0) => state.spooled = None, // all of it read: ask for what follows
                    Ok(n) => return ReadNow::Read(n),
                    Err(e) => {
                        log::error!("daemon: reading the spooled request body failed: {e}");
                        state.spooled = None;
                        state.body_failed = Some(500);
                    }
                }
            }
            if state.body_ended {
                return ReadNow::Read(0);
            }
            if state.body_failed.is_some() {
                return ReadNow::Failed;
            }
            let mut conn = self.conn.borrow_mut();
            let max = match state.asked {
                Some(max) => max,
                None => {
                    let max = buf.len().max(BODY_READ_AHEAD);
                    // After the response's queued frames, in order.
                    conn.queue_without_blocking(&Frame::ReadBody { max: max as u32 });
                    if conn.flush_without_blocking().is_err() {
                        return ReadNow::Failed;
                    }
                    state.asked = Some(max);
                    max
                }
            };
            if !wait && !conn.has_buffered_frame() && !readable_now(conn.stream.as_raw_fd()) {
                return ReadNow::NotYet;
            }
            if wait && conn.flush().is_err() {
                return ReadNow::Failed;
            }
            match conn.read_frame() {
                Ok(Some(Frame::RequestBody(data))) if data.len() <= max => state.pending = data,
                Ok(Some(Frame::RequestBodyFile { length })) => match conn.take_received_fd() {
                    Some(fd) => state.spooled = Some(SpooledBody::new(fd, length)),
                    None => {
                        log::error!("daemon: the Apache child handed over no spooled body file");
                        state.body_failed = Some(500);
                    }
                },
                // The end follows.
                Ok(Some(Frame::RequestTrailers(fields))) => {
                    state.request_trailers = fields;
                    continue;
                }
                Ok(Some(Frame::RequestBodyEnd)) => {
                    state.body_ended = true;
                    state.body_follows = false;
                }
                Ok(Some(Frame::RequestBodyFailed { status })) => state.body_failed = Some(status),
                Ok(Some(Frame::Cancel)) => {
                    log::debug!("daemon: the client went away while its body was awaited");
                    state.body_failed = Some(400);
                }
                other => {
                    log::error!(
                        "daemon: the Apache child answered a body read with {other:?}; closing the connection"
                    );
                    state.body_failed = Some(400);
                }
            }
            if !state.body_follows {
                state.asked = None;
            }
        }
    }

    /// Whether the connection can serve another request once this one ended: not while a
    /// body read is unanswered (its answer would arrive in the next request's place).
    pub(crate) fn leaves_connection_in_step(&self) -> bool {
        let progress = self.progress.borrow();
        // A body sent with the head is read past by `into_connection`.
        progress.asked.is_none() || progress.body_follows
    }

    /// The response trailers the application gave, as the frame that carries them.
    pub(crate) fn take_trailers(&self) -> Option<Frame> {
        let trailers = std::mem::take(&mut self.progress.borrow_mut().trailers);
        (!trailers.is_empty()).then_some(Frame::ResponseTrailers(trailers))
    }
}

/// A request body the Apache child read whole into a temporary file and handed over: read
/// here at its own offsets (the child's file position is its own), up to the length told.
/// Applications often read in small buffers (`std::io::copy`'s 8 KiB): the file is read in
/// large pieces, and small reads are served from the last one.
struct SpooledBody {
    file: std::fs::File,
    /// Bytes of the file read so far.
    read: u64,
    length: u64,
    /// The last large piece read, and how much of it was handed out.
    ahead: Vec<u8>,
    taken: usize,
}

/// Reads at least this large go straight into the application's buffer.
const SPOOL_PIECE: usize = 256 * 1024;

impl SpooledBody {
    fn new(fd: OwnedFd, length: u64) -> SpooledBody {
        SpooledBody {
            file: fd.into(),
            read: 0,
            length,
            ahead: Vec::new(),
            taken: 0,
        }
    }

    /// The next bytes: 0 once all `length` are read.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.taken < self.ahead.len() {
            let n = buf.len().min(self.ahead.len() - self.taken);
            buf[..n].copy_from_slice(&self.ahead[self.taken..self.taken + n]);
            self.taken += n;
            return Ok(n);
        }
        if buf.len() >= SPOOL_PIECE {
            return self.read_file(buf);
        }
        let mut ahead = std::mem::take(&mut self.ahead);
        ahead.resize(SPOOL_PIECE, 0);
        let got = self.read_file(&mut ahead);
        ahead.truncate(*got.as_ref().unwrap_or(&0));
        self.ahead = ahead;
        self.taken = 0;
        if got? == 0 {
            return Ok(0);
        }
        self.read(buf)
    }

    fn read_file(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let left = usize::try_from(self.length - self.read).unwrap_or(usize::MAX);
        let want = buf.len().min(left);
        if want == 0 {
            return Ok(0);
        }
        match self.file.read_at(&mut buf[..want], self.read)? {
            0 => Err(io::ErrorKind::UnexpectedEof.into()),
            n => {
                self.read += n as u64;
                Ok(n)
            }
        }
    }
}

/// A daemon instance's context, for its log lines.
pub(crate) struct DaemonAppContext {
    pub(crate) label: String,
}

pub(crate) static DAEMON_HOST_V1: HostV1 = host_table::<DaemonRequest, DaemonAppContext>();

impl RequestState for DaemonRequest {
    type WholeBody = Bytes;

    fn abi_request(&self) -> RequestV1 {
        DaemonRequest::abi_request(self)
    }

    fn finish_head(&self) -> Result<ResponseHead, String> {
        self.progress.borrow().head.finish()
    }

    fn body_failure_status(&self) -> Option<u16> {
        self.progress.borrow().body_failed
    }

    fn header(&self, name: &[u8]) -> Option<&[u8]> {
        DaemonRequest::header(self, name)
    }

    fn for_each_header(&self, visit: &mut dyn FnMut(&[u8], &[u8])) {
        for (name, value) in self.head.headers.iter() {
            visit(name, value);
        }
    }

    fn var(&self, name: &[u8]) -> Option<&[u8]> {
        DaemonRequest::var(self, name)
    }

    fn for_each_var(&self, visit: &mut dyn FnMut(&[u8], &[u8])) {
        for (name, value) in self.head.vars.iter() {
            visit(name, value);
        }
    }

    fn read_body(&self, buf: &mut [u8]) -> Option<usize> {
        match self.read_body_from_child(buf, true) {
            ReadNow::Read(n) => Some(n),
            ReadNow::NotYet | ReadNow::Failed => None,
        }
    }

    fn read_body_now(&self, buf: &mut [u8]) -> ReadNow {
        self.read_body_from_child(buf, false)
    }

    fn for_each_trailer(&self, visit: &mut dyn FnMut(&[u8], &[u8])) {
        for (name, value) in &self.progress.borrow().request_trailers {
            visit(name, value);
        }
    }

    /// The connection to the Apache child, which answers a body read once the client sent
    /// more.
    fn input_fd(&self) -> Option<std::os::fd::RawFd> {
        Some(self.conn.borrow().stream.as_raw_fd())
    }

    /// Checked here to tell the application at once; the Apache child checks again.
    fn add_trailer(&self, name: &[u8], value: &[u8]) -> bool {
        if let Err(problem) = check_trailer(name, value) {
            log::error!("daemon: a response trailer was dropped: {problem}");
            return false;
        }
        self.progress
            .borrow_mut()
            .trailers
            .push((Bytes::copy_from_slice(name), Bytes::copy_from_slice(value)));
        true
    }

    fn set_status(&self, status: u32) -> bool {
        self.progress.borrow_mut().head.set_status(status)
    }

    fn set_body(&self, body: &[u8]) -> bool {
        let mut progress = self.progress.borrow_mut();
        progress.whole_body.give(|| Bytes::copy_from_slice(body))
    }

    fn take_whole_body(&self) -> Option<Bytes> {
        self.progress.borrow_mut().whole_body.take()
    }

    fn add_header(&self, name: &[u8], value: &[u8]) -> bool {
        let mut progress = self.progress.borrow_mut();
        match progress.head.header(name, value) {
            Some(HeaderUse::HopByHop) => true, // Apache manages the connection itself
            Some(_) => {
                progress
                    .headers
                    .push((Bytes::copy_from_slice(name), Bytes::copy_from_slice(value)));
                true
            }
            None => false,
        }
    }

    fn withdraw_upgrade_offer(&self) {
        self.progress.borrow_mut().head.withdraw_offer();
    }

    fn accept_upgrade(&self) -> Option<OwnedFd> {
        let mut progress = self.progress.borrow_mut();
        if progress.head.offered().is_none() || progress.tunnel_end.is_some() {
            return None;
        }
        let (daemon_end, app_end) = socket_pair()
            .inspect_err(|e| log::error!("daemon: cannot hand a connection over: {e}"))
            .ok()?;
        progress.head.accept_upgrade();
        progress.tunnel_end = Some(daemon_end);
        Some(app_end)
    }

    fn log(&self, level: u32, message: &[u8]) {
        // The Apache child writes it to the request's virtual host's error log; a connection
        // that broke is noticed by the request itself.
        let _ = self.send(&Frame::Log {
            level: u8::try_from(level).unwrap_or(abi::LOG_TRACE as u8),
            message: Bytes::copy_from_slice(message),
        });
    }
}

impl InstanceContext for DaemonAppContext {
    fn log(&self, level: u32, message: &str) {
        log_at(level, &self.label, message);
    }

    fn max_log_level(&self) -> u32 {
        Self::max_log_level_unattributed()
    }

    fn log_unattributed(level: u32, message: &str) {
        log_at(level, "daemon", message);
    }

    fn max_log_level_unattributed() -> u32 {
        match log::max_level() {
            log::LevelFilter::Off | log::LevelFilter::Error => abi::LOG_ERROR,
            log::LevelFilter::Warn => abi::LOG_WARN,
            log::LevelFilter::Info => abi::LOG_INFO,
            log::LevelFilter::Debug => abi::LOG_DEBUG,
            log::LevelFilter::Trace => abi::LOG_TRACE,
        }
    }
}

/// A daemon's log lines go to Apache's main error log (the daemon's standard error).
fn log_at(level: u32, label: &str, message: &str) {
    match level {
        abi::LOG_ERROR => log::error!("{label}: {message}"),
        abi::LOG_WARN => log::warn!("{label}: {message}"),
        abi::LOG_INFO => log::info!("{label}: {message}"),
        abi::LOG_DEBUG => log::debug!("{label}: {message}"),
        _ => log::trace!("{label}: {message}"),
    }
}
