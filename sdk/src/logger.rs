//! Sends the application's `log` records and panics to Apache's error log.
//!
//! A record goes to the log of whatever the current thread is doing for the host: the request it
//! is handling (so it lands in that virtual host's error log), the instance being created or
//! destroyed, or, from threads of the application's own, the main server's log.

use std::cell::Cell;
use std::sync::Once;
use std::sync::atomic::{AtomicPtr, Ordering};

use log::{Level, LevelFilter, Log, Metadata, Record};

use crate::abi::{self, HostApp, HostRequest, HostV1, Str};

#[derive(Clone, Copy)]
enum Context {
    None,
    Request(*const HostRequest),
    App(*const HostApp),
}

thread_local! {
    static CONTEXT: Cell<Context> = const { Cell::new(Context::None) };
}

/// The host's table; static in the host, so it is valid for the life of the process.
static HOST: AtomicPtr<HostV1> = AtomicPtr::new(std::ptr::null_mut());

/// Restores the previous log context when dropped.
pub(crate) struct ContextGuard(Context);

impl Drop for ContextGuard {
    fn drop(&mut self) {
        CONTEXT.with(|c| c.set(self.0));
    }
}

fn enter(context: Context) -> ContextGuard {
    ContextGuard(CONTEXT.with(|c| c.replace(context)))
}

pub(crate) fn enter_request(request: *const HostRequest) -> ContextGuard {
    enter(Context::Request(request))
}

pub(crate) fn enter_app(app: *const HostApp) -> ContextGuard {
    enter(Context::App(app))
}

/// Connects `log` and panics to the host. Called for every instance; the first call installs
/// the logger and the panic hook, later ones only raise the level.
pub(crate) fn install(host: &'static HostV1, app: *const HostApp) {
    HOST.store((host as *const HostV1).cast_mut(), Ordering::Release);
    static INSTALL: Once = Once::new();
    let mut ours = false;
    INSTALL.call_once(|| {
        // An application that installed its own logger keeps it.
        ours = log::set_logger(&HostLogger).is_ok();
        std::panic::set_hook(Box::new(|info| {
            emit(
                abi::LOG_ERROR,
                &format!("application panicked{}", describe_panic(info)),
            );
        }));
    });
    if ours || log::max_level() != LevelFilter::Off {
        // SAFETY: host call; `app` is the context the host gave this instance.
        let wanted = level_filter(unsafe { (host.max_log_level)(app) });
        if wanted > log::max_level() {
            log::set_max_level(wanted);
        }
    }
}

/// ` at FILE:LINE: MESSAGE` for a panic: one log line instead of a backtrace.
pub fn describe_panic(info: &std::panic::PanicHookInfo<'_>) -> String {
    let message = info
        .payload()
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    match info.location() {
        Some(place) => format!(" at {}:{}: {message}", place.file(), place.line()),
        None => format!(": {message}"),
    }
}

fn level_filter(host_level: u32) -> LevelFilter {
    match host_level {
        abi::LOG_ERROR => LevelFilter::Error,
        abi::LOG_WARN => LevelFilter::Warn,
        abi::LOG_INFO => LevelFilter::Info,
        abi::LOG_DEBUG => LevelFilter::Debug,
        l if l >= abi::LOG_TRACE => LevelFilter::Trace,
        _ => LevelFilter::Off,
    }
}

fn host_level(level: Level) -> u32 {
    match level {
        Level::Error => abi::LOG_ERROR,
        Level::Warn => abi::LOG_WARN,
        Level::Info => abi::LOG_INFO,
        Level::Debug => abi::LOG_DEBUG,
        Level::Trace => abi::LOG_TRACE,
    }
}

/// Writes one message to the host's log in the current thread's context.
pub(crate) fn emit(level: u32, message: &str) {
    let host = HOST.load(Ordering::Acquire);
    if host.is_null() {
        return; // not loaded by a host (e.g. unit tests): nowhere to log
    }
    // SAFETY: HOST is only ever set to the host's static table.
    let host = unsafe { &*host };
    let text = Str::from_bytes(message.as_bytes());
    // SAFETY: host calls with contexts the host handed us and that are still current on this
    // thread (the guards restore the previous context before they end).
    unsafe {
        match CONTEXT.with(Cell::get) {
            Context::Request(request) => (host.log_request)(request, level, text),
            Context::App(app) => (host.log_app)(app, level, text),
            Context::None => (host.log_app)(std::ptr::null(), level, text),
        }
    }
}

struct HostLogger;

impl Log for HostLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            emit(
                host_level(record.level()),
                &format!("{}: {}", record.target(), record.args()),
            );
        }
    }

    fn flush(&self) {}
}
