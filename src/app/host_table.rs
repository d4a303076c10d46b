//! The functions the host offers applications (`rustapp::abi::HostV1`). Each converts the ABI's
//! handles back into the host's types and never lets a panic unwind into application code.

use std::ffi::c_void;

use rustapp::abi::{self, HostApp, HostRequest, HostV1, Str, VisitFn};

use super::exchange::Exchange;
use crate::ffi::{ApacheLevel, Server, guard, log_main, log_request, log_server};

/// An embedded instance's context: the server (virtual host) whose error log it writes to.
pub(crate) struct AppContext {
    pub(crate) server: Server<'static>,
}

impl AppContext {
    /// # Safety
    /// `app` must be null or the `HostApp` of an instance created with this host table.
    unsafe fn from_host_app<'a>(app: *const HostApp) -> Option<&'a AppContext> {
        // SAFETY: per the contract, it points at the `AppContext` the instance owns.
        unsafe { app.cast::<AppContext>().as_ref() }
    }
}

pub(crate) static HOST_V1: HostV1 = HostV1 {
    size: size_of::<HostV1>() as u32,
    header,
    each_header,
    var,
    each_var,
    read_body,
    set_status,
    add_header,
    log_request: log_for_request,
    log_app,
    max_log_level,
};

/// # Safety
/// `request` must be the handle the host put in the `RequestV1` of a call still in progress.
unsafe fn exchange<'a>(request: *const HostRequest) -> &'a Exchange<'a> {
    // SAFETY: per the contract, it points at the handler's live `Exchange`.
    unsafe { &*request.cast::<Exchange<'a>>() }
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
pub(crate) unsafe fn answer_lookup(found: Option<&[u8]>, value: *mut Str) -> i32 {
    match found {
        Some(v) => {
            // SAFETY: per the contract.
            unsafe { *value = Str::from_bytes(v) };
            1
        }
        None => 0,
    }
}

unsafe extern "C" fn header(request: *const HostRequest, name: Str, value: *mut Str) -> i32 {
    // SAFETY: ABI contract for `header`.
    guard(0, || unsafe {
        answer_lookup(exchange(request).header(bytes(name)), value)
    })
}

unsafe extern "C" fn each_header(
    request: *const HostRequest,
    visit: VisitFn,
    context: *mut c_void,
) {
    guard((), || {
        // SAFETY: ABI contract for `each_header`; `visit` is the application's callback.
        unsafe { exchange(request) }
            .each_header(|n, v| unsafe { visit(context, Str::from_bytes(n), Str::from_bytes(v)) });
    })
}

unsafe extern "C" fn var(request: *const HostRequest, name: Str, value: *mut Str) -> i32 {
    // SAFETY: ABI contract for `var`.
    guard(0, || unsafe {
        answer_lookup(exchange(request).var(bytes(name)), value)
    })
}

unsafe extern "C" fn each_var(request: *const HostRequest, visit: VisitFn, context: *mut c_void) {
    guard((), || {
        // SAFETY: ABI contract for `each_var`; `visit` is the application's callback.
        unsafe { exchange(request) }
            .each_var(|n, v| unsafe { visit(context, Str::from_bytes(n), Str::from_bytes(v)) });
    })
}

unsafe extern "C" fn read_body(request: *mut HostRequest, buf: *mut u8, len: usize) -> isize {
    guard(-1, || {
        if len == 0 {
            return 0;
        }
        // SAFETY: ABI contract: `buf` is writable for `len` bytes.
        let buf = unsafe { std::slice::from_raw_parts_mut(buf, len) };
        // SAFETY: ABI contract for `read_body`.
        match unsafe { exchange(request) }.read_body(buf) {
            Some(n) => n as isize,
            None => -1,
        }
    })
}

unsafe extern "C" fn set_status(request: *mut HostRequest, status: u32) -> i32 {
    // SAFETY: ABI contract for `set_status`.
    guard(-1, || {
        if unsafe { exchange(request) }.set_status(status) {
            0
        } else {
            -1
        }
    })
}

unsafe extern "C" fn add_header(request: *mut HostRequest, name: Str, value: Str) -> i32 {
    guard(-1, || {
        // SAFETY: ABI contract for `add_header`.
        let accepted = unsafe { exchange(request).add_header(bytes(name), bytes(value)) };
        if accepted { 0 } else { -1 }
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

fn text(message: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(message)
}

unsafe extern "C" fn log_for_request(request: *const HostRequest, level: u32, message: Str) {
    guard((), || {
        // SAFETY: ABI contract for `log_request`.
        let (exchange, message) = unsafe { (exchange(request), bytes(message)) };
        log_request(exchange.request(), apache_level(level), &text(message));
    })
}

unsafe extern "C" fn log_app(app: *const HostApp, level: u32, message: Str) {
    guard((), || {
        // SAFETY: ABI contract for `log_app`: null or this host's context.
        let (context, message) = unsafe { (AppContext::from_host_app(app), bytes(message)) };
        match context {
            Some(context) => log_server(context.server, apache_level(level), &text(message)),
            None => log_main(apache_level(level), &text(message)),
        }
    })
}

unsafe extern "C" fn max_log_level(app: *const HostApp) -> u32 {
    guard(abi::LOG_WARN, || {
        // SAFETY: ABI contract for `max_log_level`: null or this host's context.
        let level = match unsafe { AppContext::from_host_app(app) } {
            Some(context) => context.server.log_level(),
            None => ApacheLevel::WARNING,
        };
        match level {
            l if l >= ApacheLevel::TRACE1 => abi::LOG_TRACE,
            l if l >= ApacheLevel::DEBUG => abi::LOG_DEBUG,
            l if l >= ApacheLevel::INFO => abi::LOG_INFO,
            l if l >= ApacheLevel::WARNING => abi::LOG_WARN,
            _ => abi::LOG_ERROR,
        }
    })
}
