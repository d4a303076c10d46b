//! The C ABI between mod_rustapp (the host) and an application library, version 1.
//!
//! This file is the one definition of the ABI; `include/rustapp.h` mirrors it for apps written
//! in other languages. Rules that keep it stable:
//! - an application library exports one symbol, [`ENTRY_SYMBOL`], a function returning a
//!   pointer to a static [`AppV1`]; the host refuses a table whose `abi_major` differs from its
//!   own and reads only the first `size` bytes of it;
//! - every struct starts with its size, so a later minor version may append fields;
//! - memory is freed on the side that allocated it: the host never frees what the app returns
//!   (it hands a body back through `body_close`), the app never keeps a pointer the host gave it
//!   beyond the call or request it was given for;
//! - the host calls `handle`, `body_next` and `body_close` of one request on one thread; its
//!   request functions may be called only on that thread, while one of those calls runs (the
//!   SDK's `Request` is not `Send`); `log_app` and `max_log_level` from any thread. From ABI
//!   1.2 on, an application accepts `body_next` and `body_close` of one body on any thread,
//!   one call at a time (a daemon hands a body that waits to whichever thread is free), and
//!   the request functions on the thread making that call.

use std::ffi::c_void;

/// Incompatible changes bump the major version; the host refuses other majors.
pub const ABI_MAJOR: u32 = 1;
/// Compatible additions bump the minor version. 1.1 added the user-store entry points; 1.2
/// response bodies that wait without holding a thread (`BODY_PENDING`, `body_ready_fd`); 1.3
/// protocol upgrades (`RequestV1::upgrade`, `HostV1::accept_upgrade`, status 101); 1.4
/// trailers both ways (`HostV1::add_trailer`, `HostV1::each_trailer`) and request bodies read
/// without waiting while the response streams (`HostV1::read_body_now`, `BODY_PENDING_INPUT`);
/// 1.5 every request variable in one call (`HostV1::copy_vars`) and a small whole body handed
/// over during `handle` (`HostV1::set_body`).
pub const ABI_MINOR: u32 = 5;
/// The symbol every application library exports: `const RustAppV1 *rustapp_app(void)`.
pub const ENTRY_SYMBOL: &str = "rustapp_app";

/// Borrowed bytes: `ptr` is valid for `len` bytes for as long as the call or request that
/// handed it over. Not NUL-terminated. `ptr` may be null when `len` is 0.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Str {
    pub ptr: *const u8,
    pub len: usize,
}

impl Str {
    pub const EMPTY: Str = Str {
        ptr: std::ptr::null(),
        len: 0,
    };

    pub const fn from_static(s: &'static str) -> Str {
        Str {
            ptr: s.as_ptr(),
            len: s.len(),
        }
    }

    pub fn from_bytes(bytes: &[u8]) -> Str {
        Str {
            ptr: bytes.as_ptr(),
            len: bytes.len(),
        }
    }

    /// # Safety
    /// `ptr` must be valid for `len` bytes for the lifetime `'a`.
    pub unsafe fn as_bytes<'a>(self) -> &'a [u8] {
        if self.len == 0 {
            &[]
        } else {
            // SAFETY: the caller guarantees ptr/len describe live memory for 'a.
            unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
        }
    }
}

/// The host's state for one request. Opaque to the application.
#[repr(C)]
pub struct HostRequest {
    _private: [u8; 0],
}

/// The host's context for one application instance (which virtual host it serves, where it
/// logs). Opaque to the application.
#[repr(C)]
pub struct HostApp {
    _private: [u8; 0],
}

/// Called once for each name/value pair by the host's `each_*` functions.
pub type VisitFn = unsafe extern "C" fn(context: *mut c_void, name: Str, value: Str);

/// Log levels, most severe first (the `log` crate's order).
pub const LOG_ERROR: u32 = 1;
pub const LOG_WARN: u32 = 2;
pub const LOG_INFO: u32 = 3;
pub const LOG_DEBUG: u32 = 4;
pub const LOG_TRACE: u32 = 5;

/// What the host offers an application. The table is static in the host and outlives every
/// instance.
#[repr(C)]
pub struct HostV1 {
    pub size: u32,
    /// The first value of request header `name` (case-insensitive): 1 and `*value` set, or 0.
    pub header:
        unsafe extern "C" fn(request: *const HostRequest, name: Str, value: *mut Str) -> i32,
    /// Visits every request header in arrival order.
    pub each_header:
        unsafe extern "C" fn(request: *const HostRequest, visit: VisitFn, context: *mut c_void),
    /// A CGI-style request variable (`REMOTE_ADDR`, `HTTPS`, `SetEnv` values, ...): 1 or 0.
    pub var: unsafe extern "C" fn(request: *const HostRequest, name: Str, value: *mut Str) -> i32,
    /// Visits every request variable.
    pub each_var:
        unsafe extern "C" fn(request: *const HostRequest, visit: VisitFn, context: *mut c_void),
    /// Reads request body bytes into `buf`: the count read, 0 at the end of the body, or -1 when
    /// the body cannot be read (malformed, too large, client gone).
    pub read_body:
        unsafe extern "C" fn(request: *mut HostRequest, buf: *mut u8, len: usize) -> isize,
    /// Sets the response status. Returns 0, or -1 if the host refuses the value (the response
    /// then becomes a 500).
    pub set_status: unsafe extern "C" fn(request: *mut HostRequest, status: u32) -> i32,
    /// Adds a response header. Returns 0, or -1 if the name or value is not allowed (the
    /// response then becomes a 500).
    pub add_header: unsafe extern "C" fn(request: *mut HostRequest, name: Str, value: Str) -> i32,
    /// Logs a message in the context of a request (its virtual host's error log).
    pub log_request: unsafe extern "C" fn(request: *const HostRequest, level: u32, message: Str),
    /// Logs a message in the context of an instance, or of the main server when `app` is null.
    pub log_app: unsafe extern "C" fn(app: *const HostApp, level: u32, message: Str),
    /// The most verbose level the host will record for this instance (null: main server).
    pub max_log_level: unsafe extern "C" fn(app: *const HostApp) -> u32,
    // ---- ABI 1.2. An application reads these only when `size` covers them. ----
    /// Non-zero when the host accepts `BODY_PENDING` from `body_next`.
    pub accepts_pending: u32,
    // ---- ABI 1.3. ----
    /// Takes over the connection of a request that offers an upgrade (`RequestV1::upgrade` is
    /// not empty), during `handle`: returns a connected stream socket (`AF_UNIX`,
    /// `SOCK_STREAM`, blocking) that the application now owns and closes, or -1 (no upgrade
    /// offered, already accepted, or no descriptor to spare). The application then answers
    /// status 101 with an `Upgrade` header naming one of the offered protocols and no body;
    /// once the host has sent that, the bytes the client sends arrive on the socket and what
    /// the application writes to it goes to the client, until either side closes. If the
    /// application answers anything else after all, its socket reads end of file at once.
    pub accept_upgrade: unsafe extern "C" fn(request: *mut HostRequest) -> i32,
    // ---- ABI 1.4. ----
    /// Adds a response trailer, sent after the body: as HTTP/2 trailers, or over HTTP/1.1 in
    /// the last chunk when the client said it takes them (`TE: trailers`); otherwise dropped.
    /// Called during `handle` or `body_next`, before the body ends. Returns 0, or -1 when the
    /// name or value is not allowed (the trailer is dropped and logged; the response goes on).
    pub add_trailer: unsafe extern "C" fn(request: *mut HostRequest, name: Str, value: Str) -> i32,
    /// Visits the request's trailers (sent after a chunked or HTTP/2 body), once `read_body` or
    /// `read_body_now` returned 0; none before.
    pub each_trailer:
        unsafe extern "C" fn(request: *const HostRequest, visit: VisitFn, context: *mut c_void),
    /// `read_body` that never waits: the count, 0 at the end, -1 on failure, or
    /// [`READ_WOULD_BLOCK`] when nothing has arrived yet. An application that gets that from
    /// within `body_next` answers [`BODY_PENDING_INPUT`], so that the host calls it again once
    /// more body arrives (or its `body_ready_fd` is readable).
    pub read_body_now:
        unsafe extern "C" fn(request: *mut HostRequest, buf: *mut u8, len: usize) -> isize,
    /// A descriptor that becomes readable when more request body may have arrived, for an
    /// application that waits for it during `handle` (where it cannot answer
    /// `BODY_PENDING_INPUT`) without holding up its other work: -1 when there is none. Owned
    /// by the host and valid until `handle` returns; the application only polls it, and
    /// `read_body_now` tells whether anything came.
    pub input_fd: unsafe extern "C" fn(request: *const HostRequest) -> i32,
    // ---- ABI 1.5. ----
    /// Every request variable, as `each_var` visits them, written into `buf` as `NAME\0VALUE\0`
    /// pairs (Apache's names and values are C strings: they hold no NUL). Returns the length
    /// of all the pairs; when that exceeds `len`, what `buf` holds is unspecified and the
    /// application calls again with room for that many bytes. Never writes past `len`.
    pub copy_vars:
        unsafe extern "C" fn(request: *const HostRequest, buf: *mut u8, len: usize) -> usize,
    /// The whole response body, during `handle`, for a body complete at once and at most
    /// [`WHOLE_BODY_MAX`] bytes: the host copies it, and the application's `handle` then gives
    /// no body (`*body` stays null), which saves the `body_next`/`body_close` calls. Returns 0,
    /// or -1 when the host does not take the body this way (larger, given already, or outside
    /// `handle`): the application then gives it as usual. A body `handle` gives all the same
    /// wins over the copy. Trailers added during `handle` follow it (a unary gRPC answer).
    pub set_body: unsafe extern "C" fn(request: *mut HostRequest, body: Str) -> i32,
}

/// The largest body `HostV1::set_body` takes.
pub const WHOLE_BODY_MAX: usize = 64 * 1024;

/// `read_body_now`: no request body has arrived yet.
pub const READ_WOULD_BLOCK: isize = -2;

impl HostV1 {
    /// Whether this host (of whatever minor version) accepts `BODY_PENDING`.
    pub fn accepts_pending(&self) -> bool {
        let needed = std::mem::offset_of!(HostV1, accepts_pending) + size_of::<u32>();
        self.size as usize >= needed && self.accepts_pending != 0
    }

    /// `accept_upgrade`, if this host (of whatever minor version) has it.
    pub fn accept_upgrade(&self) -> Option<unsafe extern "C" fn(*mut HostRequest) -> i32> {
        let needed = std::mem::offset_of!(HostV1, accept_upgrade) + size_of::<usize>();
        (self.size as usize >= needed).then_some(self.accept_upgrade)
    }

    /// Whether this host has the ABI 1.4 functions: trailers, `read_body_now` and
    /// `BODY_PENDING_INPUT`.
    pub fn has_trailers_and_duplex(&self) -> bool {
        let needed = std::mem::offset_of!(HostV1, input_fd) + size_of::<usize>();
        self.size as usize >= needed
    }

    /// `set_body`, if this host (of whatever minor version) has it.
    pub fn set_body(&self) -> Option<unsafe extern "C" fn(*mut HostRequest, Str) -> i32> {
        let needed = std::mem::offset_of!(HostV1, set_body) + size_of::<usize>();
        (self.size as usize >= needed).then_some(self.set_body)
    }

    /// `copy_vars`, if this host (of whatever minor version) has it.
    pub fn copy_vars(
        &self,
    ) -> Option<unsafe extern "C" fn(*const HostRequest, *mut u8, usize) -> usize> {
        let needed = std::mem::offset_of!(HostV1, copy_vars) + size_of::<usize>();
        (self.size as usize >= needed).then_some(self.copy_vars)
    }
}

/// One `RustAppSetting`/`setting=` pair.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Setting {
    pub name: Str,
    pub value: Str,
}

/// Everything an instance is created with. Valid only during `create`.
#[repr(C)]
pub struct AppConfigV1 {
    pub size: u32,
    pub host_app: *const HostApp,
    /// The URL path the application is mounted at (`SCRIPT_NAME` of its requests).
    pub mount_point: Str,
    pub library_path: Str,
    /// Settings with unique names, in configuration order.
    pub settings: *const Setting,
    pub settings_len: usize,
}

/// One request. Valid until `handle` returns; strings are borrowed from the host.
#[repr(C)]
pub struct RequestV1 {
    pub size: u32,
    pub host_request: *mut HostRequest,
    pub method: Str,
    /// The request target exactly as the client sent it (`REQUEST_URI`).
    pub uri: Str,
    pub protocol: Str,
    /// The mount point (`SCRIPT_NAME`); empty when mounted at `/`.
    pub script_name: Str,
    /// The decoded path below the mount point (`PATH_INFO`).
    pub path_info: Str,
    pub query_string: Str,
    /// The declared body length, or -1 when unknown (chunked) or absent.
    pub content_length: i64,
    // ---- ABI 1.3. An application reads it only when `size` covers it. ----
    /// The protocols the client offers to switch to (its `Upgrade` header, e.g. `websocket`)
    /// when the host can hand this connection over (see `HostV1::accept_upgrade`); empty
    /// otherwise. A host offers only to an application built for 1.3 or later, and only for a
    /// `GET` with `Connection: upgrade` and no body, over HTTP/1.1 or as HTTP/2's extended
    /// `CONNECT` (RFC 8441), which arrives looking like the HTTP/1.1 request.
    pub upgrade: Str,
}

impl RequestV1 {
    /// The upgrade offered, if this request's host (of whatever minor version) says.
    pub fn upgrade_offer(&self) -> Option<Str> {
        let needed = std::mem::offset_of!(RequestV1, upgrade) + size_of::<Str>();
        (self.size as usize >= needed && self.upgrade.len > 0).then_some(self.upgrade)
    }
}

/// One piece of response body, valid until the next `body_next` or `body_close` call.
#[repr(C)]
pub struct ChunkV1 {
    pub data: *const u8,
    pub len: usize,
}

/// `body_next` results.
pub const BODY_DATA: i32 = 0;
pub const BODY_FLUSH: i32 = 1;
pub const BODY_END: i32 = 2;
pub const BODY_ERROR: i32 = -1;
/// ABI 1.2, only to a host that `accepts_pending`: nothing is ready yet. The host calls
/// `body_next` again once the descriptor `body_ready_fd` gives is readable (or to end the
/// response, `body_close`), possibly from another thread.
pub const BODY_PENDING: i32 = 3;
/// ABI 1.4, only to a host that `has_trailers_and_duplex`: as `BODY_PENDING`, and the body
/// also waits for request body that `read_body_now` did not have yet. The host calls
/// `body_next` again once either has come.
pub const BODY_PENDING_INPUT: i32 = 4;

pub type CreateFn = unsafe extern "C" fn(
    host: *const HostV1,
    config: *const AppConfigV1,
    instance: *mut *mut c_void,
) -> i32;
pub type HandleFn = unsafe extern "C" fn(
    instance: *const c_void,
    request: *const RequestV1,
    body: *mut *mut c_void,
) -> i32;
pub type BodyNextFn = unsafe extern "C" fn(body: *mut c_void, chunk: *mut ChunkV1) -> i32;
pub type BodyCloseFn = unsafe extern "C" fn(body: *mut c_void);
/// ABI 1.2: a descriptor that becomes readable when a body that answered `BODY_PENDING` can go
/// on. The body owns it (it stays valid until `body_close`); the host only polls it.
pub type BodyReadyFdFn = unsafe extern "C" fn(body: *mut c_void) -> i32;
pub type DestroyFn = unsafe extern "C" fn(instance: *mut c_void);

/// Receives one string the application answers a user-store call with: the canonical user
/// name, a group name, or a realm hash. Copied by the host before it returns.
pub type ReceiveFn = unsafe extern "C" fn(context: *mut c_void, value: Str);

/// One question to the application's user store (ABI 1.1), valid during the call.
#[repr(C)]
pub struct AuthCheckV1 {
    pub size: u32,
    /// The request being authenticated. Its headers (never `Authorization`) and variables can
    /// be read through the host; its body reads as empty, and no response can be set.
    pub request: *const RequestV1,
    /// The user name the client sent (for `groups_for_user`: the authenticated user).
    pub user: Str,
    /// `check_password`: the password; `realm_hash`: the realm; `groups_for_user`: empty.
    pub secret: Str,
}

/// Results of the user-store calls.
/// `check_password`: the password is right. Before returning it the application may
/// `receive` one canonical user name, which becomes `REMOTE_USER`.
/// `groups_for_user`: the user's groups were each `receive`d (possibly none).
/// `realm_hash`: the user's hex `MD5(user:realm:password)` was `receive`d.
pub const AUTH_OK: i32 = 0;
/// No such user.
pub const AUTH_NO_USER: i32 = 1;
/// `check_password`: the user exists and the password is wrong.
pub const AUTH_DENIED: i32 = 2;
/// The application failed (it logged why); the request gets a 500.
pub const AUTH_ERROR: i32 = -1;
/// The application has no user store, or not this kind of question.
pub const AUTH_UNSUPPORTED: i32 = -2;

/// `check_password`, `groups_for_user` and `realm_hash` (see [`AuthCheckV1`], `AUTH_*`).
/// Called from many threads at once, like `handle`.
pub type AuthFn = unsafe extern "C" fn(
    instance: *const c_void,
    check: *const AuthCheckV1,
    receive: ReceiveFn,
    context: *mut c_void,
) -> i32;

/// The table an application library exports through [`ENTRY_SYMBOL`].
///
/// Life of an instance: `create` once (returns 0 and sets `*instance`, or non-zero after
/// logging why), `handle` from many threads at once, `destroy` once at shutdown.
///
/// Life of a request: `handle` sets the status and headers through the host and returns 0 with
/// `*body` set (null for an empty body), or non-zero when the application failed (the host
/// answers 500). The host then calls `body_next` until it returns `BODY_END` or `BODY_ERROR`
/// (or the client goes away), and calls `body_close` exactly once for every non-null body,
/// whatever happened.
#[repr(C)]
pub struct AppV1 {
    pub abi_major: u32,
    pub abi_minor: u32,
    /// `sizeof` this table as the application was built.
    pub size: u32,
    /// The application's name, for log lines.
    pub name: Str,
    pub create: Option<CreateFn>,
    pub handle: Option<HandleFn>,
    pub body_next: Option<BodyNextFn>,
    pub body_close: Option<BodyCloseFn>,
    pub destroy: Option<DestroyFn>,
    // ---- ABI 1.1: the user store, for Apache's authentication. Optional: null (or beyond
    // `size`, in an application built for 1.0) when the application has none. ----
    pub check_password: Option<AuthFn>,
    pub groups_for_user: Option<AuthFn>,
    pub realm_hash: Option<AuthFn>,
    // ---- ABI 1.2: bodies that wait. Required of an application that answers
    // `BODY_PENDING`. ----
    pub body_ready_fd: Option<BodyReadyFdFn>,
}

/// `size` of an ABI 1.0 table, the smallest the host accepts.
pub const APP_V1_0_SIZE: usize = std::mem::offset_of!(AppV1, check_password);

impl AppV1 {
    /// `body_ready_fd`, if the application's table (of whatever minor version) has it.
    pub fn body_ready_fd(&self) -> Option<BodyReadyFdFn> {
        let needed =
            std::mem::offset_of!(AppV1, body_ready_fd) + size_of::<Option<BodyReadyFdFn>>();
        self.body_ready_fd.filter(|_| self.size as usize >= needed)
    }

    /// Whether the application accepts `body_next`/`body_close` of a body on any thread
    /// (built for ABI 1.2 or later: its minor version says so, and its table is that long).
    pub fn bodies_move_between_threads(&self) -> bool {
        let needed =
            std::mem::offset_of!(AppV1, body_ready_fd) + size_of::<Option<BodyReadyFdFn>>();
        self.abi_minor >= 2 && self.size as usize >= needed
    }

    /// Whether the application knows protocol upgrades (built for ABI 1.3 or later): only
    /// then is it offered one, and only then may it answer 101.
    pub fn takes_upgrades(&self) -> bool {
        self.abi_minor >= 3
    }
}

// SAFETY: the table is immutable static data (function pointers and a static name).
unsafe impl Sync for AppV1 {}
// SAFETY: the host table holds only function pointers and is never mutated.
unsafe impl Sync for HostV1 {}

pub type EntryFn = unsafe extern "C" fn() -> *const AppV1;
