//! One application instance and the calls into it. Each call into application code is a call
//! through the ABI's function pointers; the SDK guarantees they do not unwind.

use std::ffi::c_void;
use std::os::fd::RawFd;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};

use std::any::Any;

use bytes::Bytes;
use rustapp::abi::{
    self, AppConfigV1, AppV1, AuthCheckV1, ChunkV1, HostApp, HostV1, RequestV1, Setting, Str,
};

use super::users::{StoreAnswer, UserQuestion, receive_value};

use crate::config::SettingList;

/// What a host table's per-instance functions (`log_app`, `max_log_level`) receive as the
/// instance's `HostApp`; each host (embedded, daemon) defines its own.
pub(crate) type HostContext = Box<dyn Any + Send + Sync>;

/// A created application instance, callable from any thread of the process.
pub(crate) struct AppInstance {
    table: &'static AppV1,
    raw: *mut c_void,
    /// Owned here, so the `HostApp` pointer the application holds stays valid.
    _context: HostContext,
    stopped: AtomicBool,
}

// SAFETY: the ABI requires `handle` to be callable from many threads at once on one instance;
// the SDK enforces it with `App: Send + Sync`.
unsafe impl Send for AppInstance {}
// SAFETY: as above.
unsafe impl Sync for AppInstance {}

/// The outcome of asking an application for a response.
pub(crate) enum Handled<'i> {
    /// A head was set on the exchange; the body, if any, follows.
    Answered(Option<ResponseBody<'i>>),
    /// The application failed (error or panic, already logged by it).
    Failed,
    /// The instance has been stopped (process shutting down).
    Stopped,
}

/// One piece of response body from the application.
pub(crate) enum BodyPiece<'b> {
    Data(&'b [u8]),
    Flush,
    End,
    Failed,
    /// Nothing yet: ask again once this descriptor is readable.
    Pending(RawFd),
    /// Nothing yet, and the body also waits for request body that has not arrived: ask again
    /// once this descriptor is readable or the client sent more.
    PendingInput(RawFd),
}

/// A response body being produced by the application. Dropping it hands it back to the
/// application (`body_close`), so every body is closed exactly once whatever happened.
pub(crate) struct ResponseBody<'i> {
    instance: &'i AppInstance,
    raw: *mut c_void,
}

impl AppInstance {
    /// Creates an instance served through `host`, whose per-instance functions receive
    /// `context` (which must be the type that host expects).
    pub(crate) fn create(
        table: &'static AppV1,
        host: &'static HostV1,
        context: HostContext,
        mount_point: &str,
        library: &str,
        settings: &SettingList,
    ) -> Result<AppInstance, String> {
        let pairs: Vec<Setting> = settings
            .iter()
            .map(|(name, value)| Setting {
                name: Str::from_bytes(name.as_bytes()),
                value: Str::from_bytes(value.as_bytes()),
            })
            .collect();
        let config = AppConfigV1 {
            size: size_of::<AppConfigV1>() as u32,
            host_app: host_app(&context),
            mount_point: Str::from_bytes(mount_point.as_bytes()),
            library_path: Str::from_bytes(library.as_bytes()),
            settings: pairs.as_ptr(),
            settings_len: pairs.len(),
        };
        let create = table.create.expect("checked when loaded");
        let mut raw = ptr::null_mut();
        // SAFETY: the host table is static, `config` and its strings outlive the call.
        let status = unsafe { create(host, &config, &mut raw) };
        if status != 0 || raw.is_null() {
            return Err(
                "the application failed to start (its own message precedes this one)".into(),
            );
        }
        Ok(AppInstance {
            table,
            raw,
            _context: context,
            stopped: AtomicBool::new(false),
        })
    }

    /// Whether the application may be offered protocol upgrades (built for ABI 1.3 or later).
    pub(crate) fn takes_upgrades(&self) -> bool {
        self.table.takes_upgrades()
    }

    /// Asks the application to answer `request`, whose `host_request` is the state the
    /// instance's host table expects.
    pub(crate) fn handle<'i>(&'i self, request: &RequestV1) -> Handled<'i> {
        if self.stopped.load(Ordering::Acquire) {
            return Handled::Stopped;
        }
        let handle = self.table.handle.expect("checked when loaded");
        let mut body = ptr::null_mut();
        // SAFETY: a live instance; `request` and the host state behind it outlive the call and
        // the body (callers keep both until the body is closed).
        let status = unsafe { handle(self.raw, request, &mut body) };
        // Lazily: a `ResponseBody` closes its body when dropped, so one must never exist for
        // a null body.
        let body = (!body.is_null()).then(|| ResponseBody {
            instance: self,
            raw: body,
        });
        if status != 0 {
            drop(body);
            return Handled::Failed;
        }
        Handled::Answered(body)
    }

    /// Asks the application's user store `question` about `request`, whose `host_request` is
    /// the state the instance's host table expects. `None` once the instance has stopped.
    pub(crate) fn ask_users(
        &self,
        question: UserQuestion,
        request: &RequestV1,
        user: &[u8],
        secret: &[u8],
    ) -> Option<StoreAnswer> {
        if self.stopped.load(Ordering::Acquire) {
            return None;
        }
        let Some(entry) = question.entry(self.table) else {
            return Some(StoreAnswer::Unsupported);
        };
        let check = AuthCheckV1 {
            size: size_of::<AuthCheckV1>() as u32,
            request,
            user: Str::from_bytes(user),
            secret: Str::from_bytes(secret),
        };
        let mut values: Vec<Bytes> = Vec::new();
        // SAFETY: a live instance; `check`, the request behind it and `values` outlive the
        // call, and `receive_value` expects exactly this `Vec`.
        let code = unsafe {
            entry(
                self.raw,
                &check,
                receive_value,
                (&raw mut values).cast::<c_void>(),
            )
        };
        Some(StoreAnswer::from_code(code, values))
    }

    /// Destroys the instance; later requests get `Handled::Stopped`.
    pub(crate) fn stop(&self) {
        if !self.stopped.swap(true, Ordering::AcqRel) {
            let destroy = self.table.destroy.expect("checked when loaded");
            // SAFETY: destroyed once (guarded by `stopped`), after the serving threads ended.
            unsafe { destroy(self.raw) };
        }
    }
}

/// The thin pointer to a context's value, as the application sees it.
fn host_app(context: &HostContext) -> *const HostApp {
    (&**context as *const (dyn Any + Send + Sync)).cast()
}

impl ResponseBody<'_> {
    pub(crate) fn next(&mut self) -> BodyPiece<'_> {
        let body_next = self.instance.table.body_next.expect("checked when loaded");
        let mut chunk = ChunkV1 {
            data: ptr::null(),
            len: 0,
        };
        // SAFETY: an open body of this instance.
        match unsafe { body_next(self.raw, &mut chunk) } {
            abi::BODY_DATA if chunk.len == 0 || chunk.data.is_null() => BodyPiece::Data(&[]),
            // SAFETY: the data stays valid until the next call on this body, which needs
            // `&mut self` and so ends this borrow first.
            abi::BODY_DATA => {
                BodyPiece::Data(unsafe { std::slice::from_raw_parts(chunk.data, chunk.len) })
            }
            abi::BODY_FLUSH => BodyPiece::Flush,
            abi::BODY_END => BodyPiece::End,
            code @ (abi::BODY_PENDING | abi::BODY_PENDING_INPUT) => match self.ready_fd() {
                Some(fd) if code == abi::BODY_PENDING => BodyPiece::Pending(fd),
                Some(fd) => BodyPiece::PendingInput(fd),
                None => {
                    log::error!(
                        "the application's body answered 'pending' without a descriptor to wait on (body_ready_fd); the response is aborted"
                    );
                    BodyPiece::Failed
                }
            },
            _ => BodyPiece::Failed,
        }
    }
}

impl ResponseBody<'_> {
    /// What a pending body waits on.
    fn ready_fd(&self) -> Option<RawFd> {
        let ready_fd = self.instance.table.body_ready_fd()?;
        // SAFETY: an open body of this instance.
        let fd = unsafe { ready_fd(self.raw) };
        (fd >= 0).then_some(fd)
    }

    /// Whether this body may be driven and closed from another thread than the one that got
    /// it (ABI 1.2 on).
    pub(crate) fn may_move_between_threads(&self) -> bool {
        self.instance.table.bodies_move_between_threads()
    }
}

impl Drop for ResponseBody<'_> {
    fn drop(&mut self) {
        let body_close = self.instance.table.body_close.expect("checked when loaded");
        // SAFETY: each body is closed exactly once, here.
        unsafe { body_close(self.raw) };
    }
}
