//! The application ABI's host functions inside a daemon: the request comes from a
//! `RequestHead` frame, body reads become `ReadBody` round trips to the Apache child, logs
//! become `Log` frames, and the response head is collected to be sent as one frame.

use std::cell::RefCell;
use std::ffi::c_void;
use std::io;

use bytes::Bytes;
use rustapp::abi::{self, HostApp, HostRequest, HostV1, RequestV1, Str, VisitFn};
use rustapp_daemon_protocol::{Frame, RequestHead};

use super::connection::Connection;
use crate::app::answer_lookup;
use crate::ffi::guard;
use crate::response_policy::{HeaderUse, check_header, check_status};

/// The host's state for one request being served by a daemon.
pub(crate) struct DaemonRequest<'c> {
    conn: RefCell<&'c mut Connection>,
    head: Box<RequestHead>,
    state: RefCell<RequestState>,
}

/// How much request body the daemon asks the Apache child for at once: applications often read
/// in small buffers, and each ask is a round trip.
const BODY_READ_AHEAD: usize = 256 * 1024;

#[derive(Default)]
struct RequestState {
    /// Request body received but not yet read by the application.
    pending: Bytes,
    status: u16,
    headers: Vec<(Bytes, Bytes)>,
    /// The first thing in the response head the host refused.
    refused: Option<String>,
    body_ended: bool,
    /// The status the Apache child chose when it could not read the body (413, ...).
    body_failed: Option<u16>,
}

impl<'c> DaemonRequest<'c> {
    pub(crate) fn new(conn: &'c mut Connection, head: Box<RequestHead>) -> DaemonRequest<'c> {
        DaemonRequest {
            conn: RefCell::new(conn),
            head,
            state: RefCell::new(RequestState {
                status: 200,
                ..RequestState::default()
            }),
        }
    }

    /// The ABI view of the request; its strings borrow the decoded head.
    pub(crate) fn abi_request(&self) -> RequestV1 {
        let h = &self.head;
        RequestV1 {
            size: size_of::<RequestV1>() as u32,
            host_request: (self as *const DaemonRequest<'_>)
                .cast_mut()
                .cast::<HostRequest>(),
            method: Str::from_bytes(&h.method),
            uri: Str::from_bytes(&h.uri),
            protocol: Str::from_bytes(&h.protocol),
            script_name: Str::from_bytes(&h.script_name),
            path_info: Str::from_bytes(&h.path_info),
            query_string: Str::from_bytes(&h.query_string),
            content_length: h.content_length,
        }
    }

    pub(crate) fn send(&self, frame: &Frame) -> io::Result<()> {
        self.conn.borrow_mut().send(frame)
    }

    /// Queues `frame`; it goes out with the next `send` (see `Connection::queue`).
    pub(crate) fn queue(&self, frame: &Frame) -> io::Result<()> {
        self.conn.borrow_mut().queue(frame)
    }

    /// The status and headers the application set, or the first thing in them refused.
    pub(crate) fn take_head(&self) -> Result<(u16, Vec<(Bytes, Bytes)>), String> {
        let mut state = self.state.borrow_mut();
        match state.refused.take() {
            Some(problem) => Err(problem),
            None => Ok((state.status, std::mem::take(&mut state.headers))),
        }
    }

    /// The status Apache chose when the request body could not be read, if that happened.
    pub(crate) fn body_failure(&self) -> Option<u16> {
        self.state.borrow().body_failed
    }

    fn header(&self, name: &[u8]) -> Option<&[u8]> {
        self.head
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| &v[..])
    }

    fn var(&self, name: &[u8]) -> Option<&[u8]> {
        self.head
            .vars
            .iter()
            .find(|(n, _)| n[..] == *name)
            .map(|(_, v)| &v[..])
    }

    /// Reads request body into `buf`, asking the Apache child for more when none is pending.
    fn read_body(&self, buf: &mut [u8]) -> Option<usize> {
        let mut state = self.state.borrow_mut();
        if !state.pending.is_empty() {
            let n = state.pending.len().min(buf.len());
            buf[..n].copy_from_slice(&state.pending.split_to(n));
            return Some(n);
        }
        if state.body_ended {
            return Some(0);
        }
        if state.body_failed.is_some() {
            return None;
        }
        let max = buf.len().max(BODY_READ_AHEAD);
        let mut conn = self.conn.borrow_mut();
        conn.send(&Frame::ReadBody { max: max as u32 }).ok()?;
        match conn.read_frame() {
            Ok(Some(Frame::RequestBody(mut data))) if data.len() <= max => {
                let n = data.len().min(buf.len());
                buf[..n].copy_from_slice(&data.split_to(n));
                state.pending = data;
                Some(n)
            }
            Ok(Some(Frame::RequestBodyEnd)) => {
                state.body_ended = true;
                Some(0)
            }
            Ok(Some(Frame::RequestBodyFailed { status })) => {
                state.body_failed = Some(status);
                None
            }
            other => {
                log::error!(
                    "daemon: the Apache child answered a body read with {other:?}; closing the connection"
                );
                state.body_failed = Some(400);
                None
            }
        }
    }

    fn set_status(&self, status: u32) -> bool {
        let mut state = self.state.borrow_mut();
        match check_status(status) {
            Ok(status) => {
                state.status = status;
                true
            }
            Err(problem) => {
                state.refused.get_or_insert(problem);
                false
            }
        }
    }

    fn add_header(&self, name: &[u8], value: &[u8]) -> bool {
        let mut state = self.state.borrow_mut();
        match check_header(name, value) {
            Ok(HeaderUse::HopByHop) => true,
            Ok(_) => {
                state
                    .headers
                    .push((Bytes::copy_from_slice(name), Bytes::copy_from_slice(value)));
                true
            }
            Err(problem) => {
                state.refused.get_or_insert(problem);
                false
            }
        }
    }
}

/// A daemon instance's context, for its log lines.
pub(crate) struct DaemonAppContext {
    pub(crate) label: String,
}

pub(crate) static DAEMON_HOST_V1: HostV1 = HostV1 {
    size: size_of::<HostV1>() as u32,
    header,
    each_header,
    var,
    each_var,
    read_body,
    set_status,
    add_header,
    log_request,
    log_app,
    max_log_level,
};

/// # Safety
/// `request` must be the `host_request` of a `RequestV1` made by `abi_request`, during the
/// request (the ABI's contract with applications).
unsafe fn request<'a>(request: *const HostRequest) -> &'a DaemonRequest<'a> {
    // SAFETY: per the contract.
    unsafe { &*request.cast::<DaemonRequest<'a>>() }
}

unsafe extern "C" fn header(r: *const HostRequest, name: Str, value: *mut Str) -> i32 {
    // SAFETY: the ABI's contract for `header`.
    guard(0, || unsafe {
        answer_lookup(request(r).header(name.as_bytes()), value)
    })
}

unsafe extern "C" fn var(r: *const HostRequest, name: Str, value: *mut Str) -> i32 {
    // SAFETY: the ABI's contract for `var`.
    guard(0, || unsafe {
        answer_lookup(request(r).var(name.as_bytes()), value)
    })
}

unsafe extern "C" fn each_header(r: *const HostRequest, visit: VisitFn, context: *mut c_void) {
    guard((), || {
        // SAFETY: the ABI's contract for `each_header`.
        for (n, v) in unsafe { &request(r).head.headers } {
            // SAFETY: the application's callback, with strings living for the request.
            unsafe { visit(context, Str::from_bytes(n), Str::from_bytes(v)) };
        }
    })
}

unsafe extern "C" fn each_var(r: *const HostRequest, visit: VisitFn, context: *mut c_void) {
    guard((), || {
        // SAFETY: the ABI's contract for `each_var`.
        for (n, v) in unsafe { &request(r).head.vars } {
            // SAFETY: the application's callback, with strings living for the request.
            unsafe { visit(context, Str::from_bytes(n), Str::from_bytes(v)) };
        }
    })
}

unsafe extern "C" fn read_body(r: *mut HostRequest, buf: *mut u8, len: usize) -> isize {
    guard(-1, || {
        if len == 0 {
            return 0;
        }
        // SAFETY: the ABI's contract for `read_body`: `buf` is writable for `len` bytes.
        let (request, buf) = unsafe { (request(r), std::slice::from_raw_parts_mut(buf, len)) };
        request.read_body(buf).map_or(-1, |n| n as isize)
    })
}

unsafe extern "C" fn set_status(r: *mut HostRequest, status: u32) -> i32 {
    // SAFETY: the ABI's contract for `set_status`.
    guard(-1, || {
        if unsafe { request(r) }.set_status(status) {
            0
        } else {
            -1
        }
    })
}

unsafe extern "C" fn add_header(r: *mut HostRequest, name: Str, value: Str) -> i32 {
    guard(-1, || {
        // SAFETY: the ABI's contract for `add_header`.
        let accepted = unsafe { request(r).add_header(name.as_bytes(), value.as_bytes()) };
        if accepted { 0 } else { -1 }
    })
}

unsafe extern "C" fn log_request(r: *const HostRequest, level: u32, message: Str) {
    guard((), || {
        // SAFETY: the ABI's contract for `log_request`.
        let (request, message) = unsafe { (request(r), message.as_bytes()) };
        // The Apache child writes it to the request's virtual host's error log; a connection
        // that broke is noticed by the request itself.
        let _ = request.send(&Frame::Log {
            level: u8::try_from(level).unwrap_or(abi::LOG_TRACE as u8),
            message: Bytes::copy_from_slice(message),
        });
    })
}

unsafe extern "C" fn log_app(app: *const HostApp, level: u32, message: Str) {
    guard((), || {
        // SAFETY: the ABI's contract for `log_app`: null or this host's context.
        let context = unsafe { app.cast::<DaemonAppContext>().as_ref() };
        // SAFETY: as above.
        let message = String::from_utf8_lossy(unsafe { message.as_bytes() });
        let label = context.map_or("daemon", |c| c.label.as_str());
        match level {
            abi::LOG_ERROR => log::error!("{label}: {message}"),
            abi::LOG_WARN => log::warn!("{label}: {message}"),
            abi::LOG_INFO => log::info!("{label}: {message}"),
            abi::LOG_DEBUG => log::debug!("{label}: {message}"),
            _ => log::trace!("{label}: {message}"),
        }
    })
}

unsafe extern "C" fn max_log_level(_app: *const HostApp) -> u32 {
    match log::max_level() {
        log::LevelFilter::Off | log::LevelFilter::Error => abi::LOG_ERROR,
        log::LevelFilter::Warn => abi::LOG_WARN,
        log::LevelFilter::Info => abi::LOG_INFO,
        log::LevelFilter::Debug => abi::LOG_DEBUG,
        log::LevelFilter::Trace => abi::LOG_TRACE,
    }
}
