//! `request_rec`: one HTTP request, and its connection.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::marker::PhantomData;
use std::ptr::NonNull;

use super::index::config_slot;
use super::pool::Pool;
use super::server::Server;
use super::sys;
use super::table::Table;

/// A request, valid for `'r` (the duration of the hook that received it).
#[derive(Clone, Copy)]
pub(crate) struct Request<'r> {
    raw: NonNull<sys::request_rec>,
    _life: PhantomData<&'r sys::request_rec>,
}

/// The client has gone away or the connection failed; nothing more can be sent.
#[derive(Debug)]
pub(crate) struct WriteError;

pub(super) fn bytes<'a>(s: *const c_char) -> &'a [u8] {
    if s.is_null() {
        return &[];
    }
    // SAFETY: callers pass request fields or hook arguments: NUL-terminated strings that live
    // as long as the request.
    unsafe { CStr::from_ptr(s) }.to_bytes()
}

impl<'r> Request<'r> {
    /// # Safety
    /// `raw` must be a live request for `'r`, used from the thread handling it.
    pub(crate) unsafe fn from_raw(raw: *mut sys::request_rec) -> Request<'r> {
        Request {
            raw: NonNull::new(raw).expect("Apache passed a null request_rec"),
            _life: PhantomData,
        }
    }

    pub(crate) fn raw(self) -> *const sys::request_rec {
        self.raw.as_ptr()
    }

    fn rec(&self) -> &'r sys::request_rec {
        // SAFETY: live for 'r, per `from_raw`.
        unsafe { self.raw.as_ref() }
    }

    pub(super) fn rec_mut(&self) -> *mut sys::request_rec {
        self.raw.as_ptr()
    }

    fn connection(&self) -> &'r sys::conn_rec {
        // SAFETY: every request has a live connection.
        unsafe { &*self.rec().connection }
    }

    pub(crate) fn pool(self) -> Pool<'r> {
        // SAFETY: the request pool lives as long as the request.
        unsafe { Pool::from_raw(self.rec().pool) }
    }

    pub(crate) fn server(self) -> Server<'r> {
        // SAFETY: the request's (virtual) server outlives it.
        unsafe { Server::from_raw(self.rec().server) }
    }

    /// The decoded, normalised URL path (`r->uri`).
    pub(crate) fn path(self) -> &'r [u8] {
        bytes(self.rec().uri)
    }

    /// The request target as sent by the client.
    pub(crate) fn unparsed_uri(self) -> &'r [u8] {
        bytes(self.rec().unparsed_uri)
    }

    pub(crate) fn method(self) -> &'r [u8] {
        bytes(self.rec().method)
    }

    pub(crate) fn protocol(self) -> &'r [u8] {
        bytes(self.rec().protocol)
    }

    pub(crate) fn query_string(self) -> &'r [u8] {
        bytes(self.rec().args)
    }

    pub(crate) fn path_info(self) -> &'r [u8] {
        bytes(self.rec().path_info)
    }

    pub(crate) fn is_proxy_request(self) -> bool {
        self.rec().proxyreq != 0
    }

    /// A HEAD request: Apache sends the head only.
    pub(crate) fn is_head(self) -> bool {
        self.rec().header_only != 0
    }

    pub(crate) fn handler(self) -> Option<&'r CStr> {
        let h = self.rec().handler;
        // SAFETY: a NUL-terminated string (static or pool).
        (!h.is_null()).then(|| unsafe { CStr::from_ptr(h) })
    }

    pub(crate) fn set_handler(self, handler: &'static CStr) {
        // SAFETY: the handler field takes a string that outlives the request.
        unsafe { (*self.rec_mut()).handler = handler.as_ptr() }
    }

    /// Sets `r->filename` (shown in logs) and `r->path_info` (a suffix of the decoded path).
    pub(crate) fn set_target(self, filename: &CStr, path_info_offset: usize) {
        let filename = self.pool().c_string(filename.to_bytes());
        // SAFETY: `uri` is a pool string at least `path_info_offset` long (checked by caller
        // through `path()`); both fields take pool strings.
        unsafe {
            let r = self.rec_mut();
            (*r).filename = filename.as_ptr().cast_mut();
            let uri_len = CStr::from_ptr((*r).uri).to_bytes().len();
            let offset = path_info_offset.min(uri_len);
            (*r).path_info = (*r).uri.add(offset);
        }
    }

    /// This module's slot in the request's per-request configuration.
    pub(crate) fn module_request_data<T>(self) -> Option<&'r T> {
        // SAFETY: our slot only ever holds a `T` set by `set_module_request_data`.
        unsafe {
            let entry = *config_slot(self.rec().request_config)?;
            (!entry.is_null()).then(|| &*entry.cast::<T>())
        }
    }

    pub(crate) fn set_module_request_data<T>(self, value: &'r T) {
        // SAFETY: our slot in the request's configuration vector; `value` outlives the request.
        unsafe {
            if let Some(slot) = config_slot(self.rec().request_config) {
                *slot = (value as *const T).cast_mut().cast::<c_void>();
            }
        }
    }

    /// This module's per-directory configuration for the request's location.
    pub(crate) fn module_dir_config<T>(self) -> Option<&'r T> {
        // SAFETY: our per-directory slot holds a `T` made by our directory config callbacks.
        unsafe {
            let entry = *config_slot(self.rec().per_dir_config)?;
            (!entry.is_null()).then(|| &*entry.cast::<T>())
        }
    }

    pub(crate) fn headers_in(self) -> Table<'r> {
        // SAFETY: a live request table.
        unsafe { Table::from_raw(self.rec().headers_in) }
    }

    /// The trailers the client sent after a chunked or HTTP/2 body (once it was read).
    pub(crate) fn trailers_in(self) -> Table<'r> {
        // SAFETY: a live request table.
        unsafe { Table::from_raw(self.rec().trailers_in) }
    }

    /// Adds a response trailer, copying name and value into the request pool: mod_http2
    /// sends `trailers_out` as HTTP/2 trailers; over HTTP/1.1 the trailer filter does.
    pub(crate) fn add_response_trailer(self, name: &[u8], value: &[u8]) {
        let pool = self.pool();
        // SAFETY: a live request table.
        unsafe { Table::from_raw(self.rec().trailers_out) }
            .add(pool.c_string(name), pool.c_string(value));
    }

    /// Whether trailers wait to end an HTTP/1.1 body (in its last chunk): the head must then
    /// leave before the body's end, or Apache gives it a `Content-Length` and no chunks.
    pub(crate) fn has_http1_trailers(self) -> bool {
        // SAFETY: a live request table.
        !unsafe { Table::from_raw(self.rec().trailers_out) }.is_empty() && !self.is_http2()
    }

    /// Whether the request is an HTTP/2 stream.
    pub(crate) fn is_http2(self) -> bool {
        // SAFETY: reads the request's connection.
        unsafe { sys::rustapp_shim_is_http2(self.rec_mut()) != 0 }
    }

    /// Makes a chunked HTTP/1.1 response end with `trailers_out` in its last chunk.
    pub(crate) fn send_trailers_in_last_chunk(self) {
        // SAFETY: a live request on its handler's thread.
        unsafe { sys::rustapp_shim_add_trailers_filter(self.rec_mut()) }
    }

    /// `SetEnv`, `PassEnv`, mod_rewrite's `E=` and other per-request variables.
    pub(crate) fn subprocess_env(self) -> Table<'r> {
        // SAFETY: a live request table.
        unsafe { Table::from_raw(self.rec().subprocess_env) }
    }

    fn headers_out(self) -> Table<'r> {
        // SAFETY: a live request table.
        unsafe { Table::from_raw(self.rec().headers_out) }
    }

    pub(crate) fn client_ip(self) -> &'r [u8] {
        bytes(self.rec().useragent_ip)
    }

    /// The address of the connection's other end (a proxy, if there is one; mod_remoteip
    /// does not change it).
    pub(crate) fn peer_ip(self) -> &'r [u8] {
        bytes(self.connection().client_ip)
    }

    pub(crate) fn client_port(self) -> Option<u16> {
        let addr = self.connection().client_addr;
        // SAFETY: the connection's client address lives as long as the connection.
        (!addr.is_null()).then(|| unsafe { (*addr).port })
    }

    pub(crate) fn local_ip(self) -> &'r [u8] {
        bytes(self.connection().local_ip)
    }

    pub(crate) fn user(self) -> &'r [u8] {
        bytes(self.rec().user)
    }

    /// Sets the authenticated user (`REMOTE_USER`, the access log's `%u`).
    pub(crate) fn set_user(self, user: &[u8]) {
        let user = self.pool().c_string(user);
        // SAFETY: a field write on the request's thread; the name is a request-pool string.
        unsafe { (*self.rec_mut()).user = user.as_ptr().cast_mut() }
    }

    pub(crate) fn auth_type(self) -> &'r [u8] {
        bytes(self.rec().ap_auth_type)
    }

    /// The server name as Apache would put it in a self-referencing URL.
    pub(crate) fn server_name(self) -> &'r [u8] {
        // SAFETY: returns a configuration or request string.
        bytes(unsafe { sys::ap_get_server_name(self.rec_mut()) })
    }

    pub(crate) fn server_port(self) -> u16 {
        // SAFETY: reads the request's server and connection.
        unsafe { sys::ap_get_server_port(self.rec_mut()) }
    }

    pub(crate) fn is_https(self) -> bool {
        // SAFETY: asks mod_ssl (or any TLS module) about the live connection.
        unsafe { sys::ap_ssl_conn_is_ssl(self.rec().connection) != 0 }
    }

    /// Sets the response status. Apache answers codes missing from its table (418, 425, ...)
    /// with 500 unless a status line is given, so those get one, as mod_wsgi does.
    pub(crate) fn set_status(self, status: u16) {
        // SAFETY: field writes on the handling thread; the status line is a pool string.
        unsafe {
            let r = self.rec_mut();
            (*r).status = c_int::from(status);
            let known = CStr::from_ptr(sys::ap_get_status_line(c_int::from(status)));
            // Apache answers an unknown status with another's line (500's): a status line
            // of its own unless the line starts with this status.
            if !starts_with_status(known.to_bytes(), status) {
                let line = self
                    .pool()
                    .c_string(format!("{status} Unknown Reason").as_bytes());
                (*r).status_line = line.as_ptr();
            }
        }
    }

    /// Clears the type mod_mime guessed from the library's file name.
    pub(crate) fn clear_content_type(self) {
        // SAFETY: plain field write; null means "no type".
        unsafe { (*self.rec_mut()).content_type = std::ptr::null() }
    }

    pub(crate) fn set_content_type(self, value: &[u8]) {
        let value = self.pool().c_string(value);
        // SAFETY: ap_set_content_type keeps the pointer: it is a request-pool string.
        unsafe { sys::ap_set_content_type(self.rec_mut(), value.as_ptr()) }
    }

    /// Adds a response header, copying name and value into the request pool.
    pub(crate) fn add_response_header(self, name: &[u8], value: &[u8]) {
        let pool = self.pool();
        self.headers_out()
            .add(pool.c_string(name), pool.c_string(value));
    }

    /// Sends body bytes (the head goes first, on the first write).
    pub(crate) fn write(self, data: &[u8]) -> Result<(), WriteError> {
        for piece in data.chunks(c_int::MAX as usize) {
            // SAFETY: a live request; `piece` is readable for its length.
            let written = unsafe {
                sys::ap_rwrite(piece.as_ptr().cast(), piece.len() as c_int, self.rec_mut())
            };
            if written < 0 {
                return Err(WriteError);
            }
        }
        Ok(())
    }

    /// Pushes everything written so far to the client.
    pub(crate) fn flush(self) -> Result<(), WriteError> {
        // SAFETY: a live request.
        let status = unsafe { sys::ap_rflush(self.rec_mut()) };
        if status < 0 { Err(WriteError) } else { Ok(()) }
    }

    /// Ends a response that broke off midway so that the client sees it as incomplete.
    pub(crate) fn abort_response(self) {
        // SAFETY: a live request on its handling thread.
        unsafe { sys::rustapp_shim_abort_response(self.rec_mut()) }
    }

    /// The client connection's own socket, to watch for the client going away while a
    /// response waits; `None` for an HTTP/2 stream (which shares its connection).
    pub(crate) fn client_socket_fd(self) -> Option<std::os::fd::RawFd> {
        // SAFETY: reads the request's connection.
        let fd = unsafe { sys::rustapp_shim_client_socket_fd(self.rec_mut()) };
        (fd >= 0).then_some(fd)
    }

    /// What becomes readable when the client sent more: its socket, or an HTTP/2 stream's
    /// pipe; `None` when there is nothing to watch.
    pub(crate) fn input_fd(self) -> Option<std::os::fd::RawFd> {
        // SAFETY: reads the request's connection.
        let fd = unsafe { sys::rustapp_shim_input_fd(self.rec_mut()) };
        (fd >= 0).then_some(fd)
    }

    /// A variable of Apache's CGI environment that comes from the server rather than the
    /// request line: what `ap_add_common_vars` would set, computed only when asked for.
    pub(crate) fn server_var(self, var: ServerVar) -> Option<&'r [u8]> {
        // SAFETY: the shim returns a string Apache keeps for the request or the process, or
        // NULL.
        unsafe {
            let value = sys::rustapp_shim_cgi_var(self.rec_mut(), var as i32);
            (!value.is_null()).then(|| std::ffi::CStr::from_ptr(value).to_bytes())
        }
    }

    /// Sends the regular file open on `file` as the body, as Apache's default handler would
    /// (validators, conditional requests, ranges), with status `status`. `Err` is the status
    /// to answer instead (304 Not Modified, 412, or 404 for what is not a regular file).
    pub(crate) fn send_file(self, file: std::os::fd::OwnedFd, status: u16) -> Result<(), u16> {
        use std::os::fd::IntoRawFd;
        self.set_status(status);
        // SAFETY: a live request on its handler's thread; the shim owns the descriptor now
        // (a request-pool cleanup closes it).
        let answer = unsafe { sys::rustapp_shim_send_file(self.rec_mut(), file.into_raw_fd()) };
        if answer == 0 {
            Ok(())
        } else {
            Err(u16::try_from(answer).unwrap_or(500))
        }
    }

    /// Starts reading the request body.
    pub(crate) fn body_input(self) -> BodyInput<'r> {
        BodyInput {
            request: self,
            brigade: std::ptr::null_mut(),
            eos: 0,
            failure_status: None,
        }
    }
}

/// Whether an Apache status line (`200 OK`) is the one of `status`; compared without
/// formatting the number, as this runs for every response.
fn starts_with_status(line: &[u8], status: u16) -> bool {
    let digits = line
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .try_fold(0u32, |n, &b| {
            n.checked_mul(10)?.checked_add(u32::from(b - b'0'))
        });
    digits == Some(u32::from(status))
}

/// The CGI variables [`Request::server_var`] gives (the shim's numbering).
#[derive(Clone, Copy, Debug)]
pub(crate) enum ServerVar {
    RequestScheme = 0,
    ServerSoftware = 1,
    DocumentRoot = 2,
    ContextPrefix = 3,
    ContextDocumentRoot = 4,
    ServerAdmin = 5,
    ScriptFilename = 6,
}

/// Reads the request body through Apache's input filters (de-chunking, `LimitRequestBody`).
pub(crate) struct BodyInput<'r> {
    request: Request<'r>,
    brigade: *mut sys::apr_bucket_brigade,
    eos: c_int,
    failure_status: Option<u16>,
}

/// What a read that does not wait found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReadNow {
    /// Bytes read (0: the end of the body).
    Read(usize),
    /// Nothing has arrived yet.
    NotYet,
    /// The body cannot be read (see `failure_status`).
    Failed,
}

impl BodyInput<'_> {
    /// Reads into `buf`: `Some(n)` bytes (0 at the end), or `None` when the body cannot be read.
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> Option<usize> {
        match self.read_with(buf, true) {
            ReadNow::Read(n) => Some(n),
            ReadNow::NotYet | ReadNow::Failed => None,
        }
    }

    /// Reads into `buf` what has arrived, without waiting for the client.
    pub(crate) fn read_now(&mut self, buf: &mut [u8]) -> ReadNow {
        self.read_with(buf, false)
    }

    /// Appends to `into` what a read (waiting for the client with `wait`) finds, at most
    /// `room` bytes (at least 1), without zeroing the room first.
    pub(crate) fn read_appending(
        &mut self,
        into: &mut Vec<u8>,
        room: usize,
        wait: bool,
    ) -> ReadNow {
        let room = room.max(1);
        into.reserve(room);
        let spare = &mut into.spare_capacity_mut()[..room];
        // SAFETY: Apache writes at most `room` bytes into the spare capacity, and the length
        // grows by no more than it wrote.
        let read = unsafe { self.read_raw(spare.as_mut_ptr().cast(), room, wait) };
        if let ReadNow::Read(n) = read {
            // SAFETY: the first `n` bytes of the spare capacity were written by the read.
            unsafe { into.set_len(into.len() + n) };
        }
        read
    }

    fn read_with(&mut self, buf: &mut [u8], wait: bool) -> ReadNow {
        // SAFETY: `buf` is writable for its length.
        unsafe { self.read_raw(buf.as_mut_ptr(), buf.len(), wait) }
    }

    /// # Safety
    /// `buf` must be writable for `len` bytes.
    unsafe fn read_raw(&mut self, buf: *mut u8, len: usize, wait: bool) -> ReadNow {
        if self.failure_status.is_some() {
            return ReadNow::Failed;
        }
        if self.brigade.is_null() {
            // SAFETY: a brigade in the request pool.
            self.brigade = unsafe { sys::rustapp_shim_brigade_create(self.request.rec_mut()) };
        }
        let mut status: c_int = 0;
        let read = if wait {
            sys::rustapp_shim_read_body
        } else {
            sys::rustapp_shim_read_body_now
        };
        // SAFETY: a live request and brigade; `buf` is writable for `len` bytes (the caller's
        // promise).
        let n = unsafe {
            read(
                self.request.rec_mut(),
                self.brigade,
                buf.cast(),
                len,
                &mut self.eos,
                &mut status,
            )
        };
        match n {
            -2 => ReadNow::NotYet,
            n if n >= 0 => ReadNow::Read(n as usize),
            _ => {
                self.failure_status = Some(u16::try_from(status).unwrap_or(400));
                ReadNow::Failed
            }
        }
    }

    /// The status Apache chose for a body that could not be read (413 beyond
    /// `LimitRequestBody`, 400 for a malformed chunk, ...).
    pub(crate) fn failure_status(&self) -> Option<u16> {
        self.failure_status
    }
}

#[cfg(test)]
mod tests {
    use super::starts_with_status;

    #[test]
    fn a_status_line_belongs_to_the_status_it_starts_with() {
        assert!(starts_with_status(b"200 OK", 200));
        assert!(starts_with_status(b"418 I'm a teapot", 418));
        assert!(!starts_with_status(b"500 Internal Server Error", 299));
        assert!(!starts_with_status(b"2000 Odd", 200));
        assert!(!starts_with_status(b"20 Short", 200));
        assert!(!starts_with_status(b"", 200));
    }
}
