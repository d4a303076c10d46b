//! Writing to Apache's error log. Messages are passed with a literal `%.*s` format: text we did
//! not write is never used as a printf format.

use std::ffi::c_int;
use std::ptr;

use super::index::module_index;
use super::log_level::ApacheLevel;
use super::request::Request;
use super::server::Server;
use super::sys;

const FILE: &std::ffi::CStr = c"mod_rustapp";

fn message_len(message: &str) -> c_int {
    c_int::try_from(message.len()).unwrap_or(c_int::MAX)
}

/// Logs in a request's context: its virtual host's error log, with the client's address.
pub(crate) fn log_request(request: Request<'_>, level: ApacheLevel, message: &str) {
    // SAFETY: a live request; the format consumes exactly one length and one pointer.
    unsafe {
        sys::ap_log_rerror_(
            FILE.as_ptr(),
            0,
            module_index(),
            level.0,
            0,
            request.raw(),
            c"%.*s".as_ptr(),
            message_len(message),
            message.as_ptr(),
        );
    }
}

/// Logs to a server's (virtual host's) error log.
pub(crate) fn log_server(server: Server<'_>, level: ApacheLevel, message: &str) {
    // SAFETY: a live server record; the format consumes one length and one pointer.
    unsafe {
        sys::ap_log_error_(
            FILE.as_ptr(),
            0,
            module_index(),
            level.0,
            0,
            server.raw(),
            c"%.*s".as_ptr(),
            message_len(message),
            message.as_ptr(),
        );
    }
}

/// Logs without a server: before configuration, this is standard error; in a child, the
/// main server's error log.
pub(crate) fn log_main(level: ApacheLevel, message: &str) {
    // SAFETY: a null server is allowed; the format consumes one length and one pointer.
    unsafe {
        sys::ap_log_error_(
            FILE.as_ptr(),
            0,
            module_index(),
            level.0,
            0,
            ptr::null(),
            c"%.*s".as_ptr(),
            message_len(message),
            message.as_ptr(),
        );
    }
}

/// What the module's `log` records are attributed to on this thread.
#[derive(Clone, Copy)]
enum Scope {
    Main,
    Request(*mut sys::request_rec),
    Server(*mut sys::server_rec),
}

thread_local! {
    static SCOPE: std::cell::Cell<Scope> = const { std::cell::Cell::new(Scope::Main) };
}

/// While alive, the module's `log` records go to this request's virtual host.
pub(crate) struct LogScope(Scope);

impl Drop for LogScope {
    fn drop(&mut self) {
        SCOPE.with(|s| s.set(self.0));
    }
}

pub(crate) fn request_log_scope(request: Request<'_>) -> LogScope {
    LogScope(SCOPE.with(|s| s.replace(Scope::Request(request.raw().cast_mut()))))
}

pub(crate) fn server_log_scope(server: Server<'_>) -> LogScope {
    LogScope(SCOPE.with(|s| s.replace(Scope::Server(server.raw().cast_mut()))))
}

struct ModuleLogger;

impl log::Log for ModuleLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            log::Level::Error => ApacheLevel::ERR,
            log::Level::Warn => ApacheLevel::WARNING,
            log::Level::Info => ApacheLevel::INFO,
            log::Level::Debug => ApacheLevel::DEBUG,
            log::Level::Trace => ApacheLevel::TRACE1,
        };
        let message = record.args().to_string();
        // SAFETY: a scope only exists while its request or server is live on this thread.
        match SCOPE.with(std::cell::Cell::get) {
            Scope::Main => log_main(level, &message),
            Scope::Request(r) => log_request(unsafe { Request::from_raw(r) }, level, &message),
            Scope::Server(s) => log_server(unsafe { Server::from_raw(s) }, level, &message),
        }
    }

    fn flush(&self) {}
}

/// Routes the module's `log` records and panics to Apache's error log (once per process).
pub(crate) fn install_module_logger() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        if log::set_logger(&ModuleLogger).is_ok() {
            log::set_max_level(log::LevelFilter::Info);
        }
        // One line through Apache instead of a multi-line backtrace on standard error.
        std::panic::set_hook(Box::new(|info| {
            log::error!("mod_rustapp panicked{}", rustapp::describe_panic(info));
        }));
    });
}

/// Lets `log::debug!`/`trace!` through when some server is configured that verbosely.
pub(crate) fn raise_module_log_level(level: ApacheLevel) {
    let wanted = if level >= ApacheLevel::TRACE1 {
        log::LevelFilter::Trace
    } else if level >= ApacheLevel::DEBUG {
        log::LevelFilter::Debug
    } else {
        log::LevelFilter::Info
    };
    if wanted > log::max_level() {
        log::set_max_level(wanted);
    }
}
