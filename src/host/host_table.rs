//! The functions the host offers applications (`rustapp::abi::HostV1`), once for every host:
//! each converts the ABI's handles back into the host's state and never lets a panic unwind
//! into application code. What differs between embedded mode and a daemon is only the state
//! behind the handles ([`RequestState`], [`InstanceContext`]).

use std::ffi::c_void;
use std::os::fd::{IntoRawFd, OwnedFd};

use rustapp::abi::{self, HostApp, HostRequest, HostV1, RequestV1, Str, VisitFn};

use super::head::ResponseHead;
use crate::ffi::{ApacheLevel, ReadNow, guard};

/// A host's state for one request, behind the `HostRequest` handle of its `RequestV1`.
/// Returned bytes must stay valid until the request ends.
pub(crate) trait RequestState {
    /// How this host keeps a body handed over whole (`set_body`).
    type WholeBody;
    /// The ABI view of the request; its `host_request` handle points at this state.
    fn abi_request(&self) -> RequestV1;
    /// The response head the application set, or the first thing in it refused.
    fn finish_head(&self) -> Result<ResponseHead, String>;
    /// The status Apache chose when the request body could not be read, if that happened.
    fn body_failure_status(&self) -> Option<u16>;
    /// The first value of a request header (case-insensitive name).
    fn header(&self, name: &[u8]) -> Option<&[u8]>;
    fn for_each_header(&self, visit: &mut dyn FnMut(&[u8], &[u8]));
    /// A CGI-style variable.
    fn var(&self, name: &[u8]) -> Option<&[u8]>;
    fn for_each_var(&self, visit: &mut dyn FnMut(&[u8], &[u8]));
    /// Request body bytes: a count, 0 at the end, `None` when it cannot be read.
    fn read_body(&self, buf: &mut [u8]) -> Option<usize>;
    /// Request body bytes that have arrived, without waiting for more.
    fn read_body_now(&self, buf: &mut [u8]) -> ReadNow;
    /// The request's trailers, once its body was read to the end.
    fn for_each_trailer(&self, visit: &mut dyn FnMut(&[u8], &[u8]));
    /// `false` when the host refuses the trailer (it is dropped; the response goes on).
    fn add_trailer(&self, name: &[u8], value: &[u8]) -> bool;
    /// What becomes readable when more request body may have arrived.
    fn input_fd(&self) -> Option<std::os::fd::RawFd>;
    /// `false` when the host refuses the status (the response becomes a 500).
    fn set_status(&self, status: u32) -> bool;
    /// `false` when the host refuses the header (the response becomes a 500).
    fn add_header(&self, name: &[u8], value: &[u8]) -> bool;
    /// Keeps a copy of the whole response body (at most `abi::WHOLE_BODY_MAX` bytes), given
    /// during `handle` instead of an open body; `false` when not taken.
    fn set_body(&self, body: &[u8]) -> bool;
    /// The body handed over whole, if one was; none is taken after this.
    fn take_whole_body(&self) -> Option<Self::WholeBody>;
    /// A log line attributed to this request (ABI level).
    fn log(&self, level: u32, message: &[u8]);
    /// The application predates upgrades: the request offers none after all.
    fn withdraw_upgrade_offer(&self);
    /// The application takes the connection over: its end of the socket pair the host
    /// relays, or `None` (no upgrade offered, already taken, or no descriptors to spare).
    fn accept_upgrade(&self) -> Option<OwnedFd>;
}

/// A host's context for one instance, behind its `HostApp` handle: where its log lines go.
pub(crate) trait InstanceContext {
    fn log(&self, level: u32, message: &str);
    /// The most verbose ABI level recorded for this instance.
    fn max_log_level(&self) -> u32;
    /// A log line from application code running outside any instance's context (null
    /// `HostApp`).
    fn log_unattributed(level: u32, message: &str);
    fn max_log_level_unattributed() -> u32;
}

/// The function table for requests of type `R` and instances of type `A`.
pub(crate) const fn host_table<R: RequestState, A: InstanceContext>() -> HostV1 {
    HostV1 {
        size: size_of::<HostV1>() as u32,
        header: header::<R>,
        each_header: each_header::<R>,
        var: var::<R>,
        each_var: each_var::<R>,
        read_body: read_body::<R>,
        set_status: set_status::<R>,
        add_header: add_header::<R>,
        log_request: log_request::<R>,
        log_app: log_app::<A>,
        max_log_level: max_log_level::<A>,
        // Both hosts wait for a body that is not ready: embedded mode on Apache's thread
        // (watching the client meanwhile), a daemon on its event loop.
        accepts_pending: 1,
        accept_upgrade: accept_upgrade::<R>,
        add_trailer: add_trailer::<R>,
        each_trailer: each_trailer::<R>,
        read_body_now: read_body_now::<R>,
        input_fd: input_fd::<R>,
        copy_vars: copy_vars::<R>,
        set_body: set_body::<R>,
    }
}

/// # Safety
/// `request` must be the `HostRequest` handle the host put in the `RequestV1` of a call still in
/// progress, pointing at an `R` (the ABI's contract with applications). The lifetime in `R`
/// is not checked here: the state lives until the request ends, which outlives the call.
unsafe fn state<'a, R>(request: *const HostRequest) -> &'a R {
    // SAFETY: per the contract.
    unsafe { &*request.cast::<R>() }
}

/// # Safety
/// `app` must be null or the `HostApp` of an instance created with this table, pointing at an
/// `A` it owns.
unsafe fn context<'a, A>(app: *const HostApp) -> Option<&'a A> {
    // SAFETY: per the contract.
    unsafe { app.cast::<A>().as_ref() }
}

/// # Safety
/// `s` must describe readable memory (the ABI's `Str` contract).
unsafe fn bytes<'a>(s: Str) -> &'a [u8] {
    // SAFETY: per the contract.
    unsafe { s.as_bytes() }
}

/// The ABI's answer to a lookup: 1 with `*value` set, or 0.
///
/// # Safety
/// `value` must be the application's writable out-pointer.
unsafe fn answer_lookup(found: Option<&[u8]>, value: *mut Str) -> i32 {
    match found {
        Some(v) => {
            // SAFETY: per the contract.
            unsafe { *value = Str::from_bytes(v) };
            1
        }
        None => 0,
    }
}

fn status_code(accepted: bool) -> i32 {
    if accepted { 0 } else { -1 }
}

unsafe extern "C" fn header<R: RequestState>(
    request: *const HostRequest,
    name: Str,
    value: *mut Str,
) -> i32 {
    // SAFETY: the ABI's contract for `header`.
    guard(0, || unsafe {
        answer_lookup(state::<R>(request).header(bytes(name)), value)
    })
}

unsafe extern "C" fn var<R: RequestState>(
    request: *const HostRequest,
    name: Str,
    value: *mut Str,
) -> i32 {
    // SAFETY: the ABI's contract for `var`.
    guard(0, || unsafe {
        answer_lookup(state::<R>(request).var(bytes(name)), value)
    })
}

/// Hands each pair `each` produces to the application's `visit`.
///
/// # Safety
/// `visit` and `context` must be the application's callback and its context (the ABI's
/// contract for the `each_*` functions).
unsafe fn visit_pairs(
    visit: VisitFn,
    context: *mut c_void,
    each: impl FnOnce(&mut dyn FnMut(&[u8], &[u8])),
) {
    guard((), || {
        // SAFETY: per this function's contract; the strings live during the call.
        each(&mut |n, v| unsafe { visit(context, Str::from_bytes(n), Str::from_bytes(v)) });
    })
}

unsafe extern "C" fn each_header<R: RequestState>(
    request: *const HostRequest,
    visit: VisitFn,
    context: *mut c_void,
) {
    // SAFETY: the ABI's contract for `each_header`.
    unsafe {
        visit_pairs(visit, context, |pair| {
            state::<R>(request).for_each_header(pair)
        })
    }
}

unsafe extern "C" fn each_var<R: RequestState>(
    request: *const HostRequest,
    visit: VisitFn,
    context: *mut c_void,
) {
    // SAFETY: the ABI's contract for `each_var`.
    unsafe {
        visit_pairs(visit, context, |pair| {
            state::<R>(request).for_each_var(pair)
        })
    }
}

unsafe extern "C" fn copy_vars<R: RequestState>(
    request: *const HostRequest,
    buf: *mut u8,
    len: usize,
) -> usize {
    guard(0, || {
        let out = if buf.is_null() {
            &mut [][..]
        } else {
            // SAFETY: the ABI's contract for `copy_vars`: `buf` is writable for `len` bytes.
            unsafe { std::slice::from_raw_parts_mut(buf, len) }
        };
        let mut written = 0;
        // SAFETY: the ABI's contract for `copy_vars`.
        unsafe { state::<R>(request) }.for_each_var(&mut |name, value| {
            written = put_pair(out, written, name, value);
        });
        written
    })
}

unsafe extern "C" fn set_body<R: RequestState>(request: *mut HostRequest, body: Str) -> i32 {
    // SAFETY: the ABI's contract for `set_body`.
    guard(-1, || unsafe {
        let body = bytes(body);
        status_code(body.len() <= abi::WHOLE_BODY_MAX && state::<R>(request).set_body(body))
    })
}

/// Writes `NAME\0VALUE\0` at `at` in `out` if it fits there; returns where the pair ends
/// either way, so that the total tells the application how much room all pairs need.
fn put_pair(out: &mut [u8], at: usize, name: &[u8], value: &[u8]) -> usize {
    let end = at + name.len() + value.len() + 2;
    if let Some(pair) = out.get_mut(at..end) {
        let (name_part, value_part) = pair.split_at_mut(name.len() + 1);
        name_part[..name.len()].copy_from_slice(name);
        name_part[name.len()] = 0;
        value_part[..value.len()].copy_from_slice(value);
        value_part[value.len()] = 0;
    }
    end
}

unsafe extern "C" fn read_body<R: RequestState>(
    request: *mut HostRequest,
    buf: *mut u8,
    len: usize,
) -> isize {
    // SAFETY: the ABI's contract for `read_body`.
    unsafe {
        with_buffer::<R>(request, buf, len, |state, buf| {
            state.read_body(buf).map_or(-1, |n| n as isize)
        })
    }
}

/// Runs `read` with the request's state and the application's buffer; 0 for an empty one.
///
/// # Safety
/// As `state`; `buf` must be writable for `len` bytes (the ABI's contract for the reads).
unsafe fn with_buffer<R: RequestState>(
    request: *mut HostRequest,
    buf: *mut u8,
    len: usize,
    read: impl FnOnce(&R, &mut [u8]) -> isize,
) -> isize {
    guard(-1, || {
        if len == 0 {
            return 0;
        }
        // SAFETY: per this function's contract.
        let (state, buf) = unsafe {
            (
                state::<R>(request),
                std::slice::from_raw_parts_mut(buf, len),
            )
        };
        read(state, buf)
    })
}

unsafe extern "C" fn read_body_now<R: RequestState>(
    request: *mut HostRequest,
    buf: *mut u8,
    len: usize,
) -> isize {
    // SAFETY: the ABI's contract for `read_body_now`.
    unsafe {
        with_buffer::<R>(request, buf, len, |state, buf| {
            match state.read_body_now(buf) {
                ReadNow::Read(n) => n as isize,
                ReadNow::NotYet => abi::READ_WOULD_BLOCK,
                ReadNow::Failed => -1,
            }
        })
    }
}

unsafe extern "C" fn input_fd<R: RequestState>(request: *const HostRequest) -> i32 {
    // SAFETY: the ABI's contract for `input_fd`.
    guard(-1, || {
        unsafe { state::<R>(request) }.input_fd().unwrap_or(-1)
    })
}

unsafe extern "C" fn each_trailer<R: RequestState>(
    request: *const HostRequest,
    visit: VisitFn,
    context: *mut c_void,
) {
    // SAFETY: the ABI's contract for `each_trailer`.
    unsafe {
        visit_pairs(visit, context, |pair| {
            state::<R>(request).for_each_trailer(pair)
        })
    }
}

unsafe extern "C" fn add_trailer<R: RequestState>(
    request: *mut HostRequest,
    name: Str,
    value: Str,
) -> i32 {
    // SAFETY: the ABI's contract for `add_trailer`.
    guard(-1, || {
        status_code(unsafe { state::<R>(request).add_trailer(bytes(name), bytes(value)) })
    })
}

unsafe extern "C" fn set_status<R: RequestState>(request: *mut HostRequest, status: u32) -> i32 {
    // SAFETY: the ABI's contract for `set_status`.
    guard(-1, || {
        status_code(unsafe { state::<R>(request) }.set_status(status))
    })
}

unsafe extern "C" fn add_header<R: RequestState>(
    request: *mut HostRequest,
    name: Str,
    value: Str,
) -> i32 {
    // SAFETY: the ABI's contract for `add_header`.
    guard(-1, || {
        status_code(unsafe { state::<R>(request).add_header(bytes(name), bytes(value)) })
    })
}

unsafe extern "C" fn log_request<R: RequestState>(
    request: *const HostRequest,
    level: u32,
    message: Str,
) {
    // SAFETY: the ABI's contract for `log_request`.
    guard((), || unsafe {
        state::<R>(request).log(level, bytes(message))
    })
}

unsafe extern "C" fn accept_upgrade<R: RequestState>(request: *mut HostRequest) -> i32 {
    // SAFETY: the ABI's contract for `accept_upgrade`.
    guard(-1, || {
        unsafe { state::<R>(request) }
            .accept_upgrade()
            .map_or(-1, IntoRawFd::into_raw_fd)
    })
}

unsafe extern "C" fn log_app<A: InstanceContext>(app: *const HostApp, level: u32, message: Str) {
    guard((), || {
        // SAFETY: the ABI's contract for `log_app`: null or this host's context.
        let (context, message) = unsafe { (context::<A>(app), bytes(message)) };
        let message = String::from_utf8_lossy(message);
        match context {
            Some(context) => context.log(level, &message),
            None => A::log_unattributed(level, &message),
        }
    })
}

unsafe extern "C" fn max_log_level<A: InstanceContext>(app: *const HostApp) -> u32 {
    guard(abi::LOG_WARN, || {
        // SAFETY: the ABI's contract for `max_log_level`: null or this host's context.
        match unsafe { context::<A>(app) } {
            Some(context) => context.max_log_level(),
            None => A::max_log_level_unattributed(),
        }
    })
}

/// An ABI log level as Apache's.
pub(crate) fn apache_level(level: u32) -> ApacheLevel {
    match level {
        abi::LOG_ERROR => ApacheLevel::ERR,
        abi::LOG_WARN => ApacheLevel::WARNING,
        abi::LOG_INFO => ApacheLevel::INFO,
        abi::LOG_DEBUG => ApacheLevel::DEBUG,
        _ => ApacheLevel::TRACE1,
    }
}

/// Apache's log level as the ABI's.
pub(crate) fn abi_level(level: ApacheLevel) -> u32 {
    match level {
        l if l >= ApacheLevel::TRACE1 => abi::LOG_TRACE,
        l if l >= ApacheLevel::DEBUG => abi::LOG_DEBUG,
        l if l >= ApacheLevel::INFO => abi::LOG_INFO,
        l if l >= ApacheLevel::WARNING => abi::LOG_WARN,
        _ => abi::LOG_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::put_pair;

    #[test]
    fn pairs_are_written_only_where_they_fit_and_the_total_says_how_much_room_all_need() {
        let mut out = [0xAA_u8; 12];
        let at = put_pair(&mut out, 0, b"HTTPS", b"on");
        assert_eq!(at, 9);
        assert_eq!(&out[..9], b"HTTPS\0on\0");
        let end = put_pair(&mut out, at, b"REMOTE_PORT", b"1");
        assert_eq!(end, 9 + 14);
        assert_eq!(
            &out[9..],
            [0xAA; 3],
            "a pair that does not fit is not written at all"
        );
        assert_eq!(put_pair(&mut [], 0, b"", b""), 2);
    }
}
