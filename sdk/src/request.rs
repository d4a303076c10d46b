use std::borrow::Cow;
use std::ffi::c_void;
use std::io;
use std::os::fd::FromRawFd;
use std::os::unix::net::UnixStream;

use crate::Error;
use crate::abi::{self, HostV1, RequestV1, Str};
use crate::guard::CarriedPanic;

/// One HTTP request, borrowed from Apache for the duration of [`crate::App::handle`].
///
/// Strings are views into Apache's own request data; nothing is copied until you ask for an
/// owned value.
pub struct Request<'a> {
    raw: &'a RequestV1,
    host: &'static HostV1,
    /// `SCRIPT_NAME`, grown by [`Request::nested`].
    script_name: Cow<'a, str>,
    /// `PATH_INFO`, shrunk by [`Request::nested`].
    path_info: &'a str,
}

impl<'a> Request<'a> {
    /// # Safety
    /// `raw` must come from the host for the current `handle` call.
    pub(crate) unsafe fn from_abi(raw: &'a RequestV1, host: &'static HostV1) -> Request<'a> {
        Request {
            raw,
            host,
            script_name: Cow::Borrowed(text(raw.script_name)),
            path_info: text(raw.path_info),
        }
    }

    /// The request as an application mounted at `prefix` below this one sees it: `prefix`
    /// moves from the start of `PATH_INFO` to the end of `SCRIPT_NAME`. `None` when the path
    /// is not `prefix` or below it (`/api` covers `/api` and `/api/x`, not `/apix`).
    ///
    /// This is how one application hands part of its URL space to another; see the crate
    /// documentation's "Middleware" section.
    pub fn nested(&mut self, prefix: &str) -> Option<Request<'_>> {
        let prefix = prefix.trim_end_matches('/');
        let rest = self.path_info.strip_prefix(prefix)?;
        if !(rest.is_empty() || rest.starts_with('/')) {
            return None;
        }
        Some(Request {
            raw: self.raw,
            host: self.host,
            script_name: Cow::Owned(format!("{}{prefix}", self.script_name)),
            path_info: rest,
        })
    }

    /// `GET`, `POST`, ...
    pub fn method(&self) -> &'a str {
        text(self.raw.method)
    }

    /// The request target exactly as the client sent it, query included (`REQUEST_URI`).
    pub fn uri(&self) -> &'a str {
        text(self.raw.uri)
    }

    /// `HTTP/1.1`, ...
    pub fn protocol(&self) -> &'a str {
        text(self.raw.protocol)
    }

    /// Where the application is mounted (`SCRIPT_NAME`); empty when mounted at `/`.
    pub fn script_name(&self) -> &str {
        &self.script_name
    }

    /// The path below the mount point (`PATH_INFO`), e.g. `/items/3`, decoded once by
    /// Apache: route by it as it is, never decode it again (`%2525` from the client is `%25`
    /// here). [`Request::uri`] has the client's own spelling.
    pub fn path_info(&self) -> &'a str {
        self.path_info
    }

    /// The query string without the `?` (`QUERY_STRING`), still percent-encoded.
    pub fn query_string(&self) -> &'a str {
        text(self.raw.query_string)
    }

    /// The declared body length, if the client sent `Content-Length`.
    pub fn content_length(&self) -> Option<u64> {
        u64::try_from(self.raw.content_length).ok()
    }

    /// The first value of a request header, by case-insensitive name, as raw bytes.
    pub fn header_bytes(&self, name: &str) -> Option<&'a [u8]> {
        let mut value = Str::EMPTY;
        // SAFETY: host call with the request handle it gave us; `value` is written on success.
        let found = unsafe {
            (self.host.header)(
                self.raw.host_request,
                Str::from_bytes(name.as_bytes()),
                &mut value,
            )
        };
        // SAFETY: header values live in the request pool until the request ends.
        (found == 1).then(|| unsafe { value.as_bytes() })
    }

    /// The first value of a request header, by case-insensitive name; `None` also when the value
    /// is not UTF-8 (use [`Request::header_bytes`] for those).
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.header_bytes(name)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every request header as received, in order, as raw bytes.
    pub fn headers(&self) -> Vec<(&'a [u8], &'a [u8])> {
        let mut out = Vec::new();
        self.for_each_header(|name, value| out.push((name, value)));
        out
    }

    /// Calls `visit` with each request header, in order, without collecting them.
    pub fn for_each_header(&self, mut visit: impl FnMut(&'a [u8], &'a [u8])) {
        let mut visit = Visitor {
            visit: &mut visit,
            panic: CarriedPanic::default(),
        };
        // SAFETY: host call; `visit_pair` calls `visit` with strings from the request pool.
        unsafe {
            (self.host.each_header)(self.raw.host_request, visit_pair, (&raw mut visit).cast());
        }
        visit.panic.resume();
    }

    /// The request's trailers (fields a chunked or HTTP/2 body ends with, such as gRPC's),
    /// once the body was read to its end; none before, or from a host before ABI 1.4.
    pub fn trailers(&self) -> Vec<(&'a [u8], &'a [u8])> {
        let mut out = Vec::new();
        each_trailer(self.host, self.raw.host_request, &mut |n, v| {
            out.push((n, v))
        });
        out
    }

    /// A CGI-style variable: `REMOTE_ADDR`, `REMOTE_PORT`, `REMOTE_USER`, `AUTH_TYPE`,
    /// `SERVER_NAME`, `SERVER_PORT`, `HTTPS`, `REQUEST_SCHEME`, `DOCUMENT_ROOT`,
    /// `SCRIPT_FILENAME` (the library), the rest of what mod_wsgi gives a WSGI application,
    /// values from `SetEnv`/`PassEnv`, ...
    pub fn var(&self, name: &str) -> Option<&'a str> {
        let mut value = Str::EMPTY;
        // SAFETY: as for `header_bytes`.
        let found = unsafe {
            (self.host.var)(
                self.raw.host_request,
                Str::from_bytes(name.as_bytes()),
                &mut value,
            )
        };
        // SAFETY: variable values live in the request pool until the request ends.
        (found == 1)
            .then(|| unsafe { value.as_bytes() })
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every CGI-style variable with a value.
    pub fn vars(&self) -> Vec<(&'a [u8], &'a [u8])> {
        let mut out = Vec::new();
        self.for_each_var(|name, value| out.push((name, value)));
        out
    }

    /// Calls `visit` with each CGI-style variable, without collecting them.
    pub fn for_each_var(&self, mut visit: impl FnMut(&'a [u8], &'a [u8])) {
        let mut visit = Visitor {
            visit: &mut visit,
            panic: CarriedPanic::default(),
        };
        // SAFETY: as for `for_each_header`.
        unsafe {
            (self.host.each_var)(self.raw.host_request, visit_pair, (&raw mut visit).cast());
        }
        visit.panic.resume();
    }

    /// Appends every CGI-style variable to `into` as `NAME\0VALUE\0` pairs: in one call to a
    /// host that offers it (ABI 1.5), one variable at a time otherwise.
    #[cfg(feature = "tower")]
    pub(crate) fn copy_vars(&self, into: &mut Vec<u8>) {
        if let Some(copy_vars) = self.host.copy_vars() {
            // The variables do not change during the call: a second try, with the room the
            // first one asked for, always fits.
            for _ in 0..2 {
                let room = into.spare_capacity_mut();
                // SAFETY: `copy_vars` writes at most `room.len()` bytes into `room`; the
                // request handle is this call's.
                let needed = unsafe {
                    copy_vars(self.raw.host_request, room.as_mut_ptr().cast(), room.len())
                };
                if needed <= room.len() {
                    // SAFETY: the host wrote `needed` bytes at the start of the spare room.
                    unsafe { into.set_len(into.len() + needed) };
                    return;
                }
                into.reserve(needed);
            }
            return;
        }
        self.for_each_var(|name, value| {
            into.extend_from_slice(name);
            into.push(0);
            into.extend_from_slice(value);
            into.push(0);
        });
    }

    /// The protocols the client offers to switch to (`websocket`, ...), when Apache can hand
    /// this connection to the application; `None` otherwise. See [`Request::accept_upgrade`].
    pub fn upgrade_offer(&self) -> Option<&'a str> {
        self.raw.upgrade_offer().map(text)
    }

    /// Takes over the connection of a request that offers an upgrade: the returned socket
    /// carries what the client sends after the switch, and what is written to it goes to the
    /// client. Answer with status 101, an `Upgrade` header naming one of the offered
    /// protocols (and whatever that protocol's handshake needs), and no body; Apache sends
    /// that, then relays bytes until either side closes. Dropping the socket closes the
    /// connection.
    ///
    /// An application that answers something else after all simply drops the socket.
    pub fn accept_upgrade(&mut self) -> Result<UnixStream, Error> {
        let Some(accept) = self.host.accept_upgrade() else {
            return Err("this mod_rustapp predates protocol upgrades (ABI 1.3)".into());
        };
        if self.upgrade_offer().is_none() {
            return Err("this request offers no upgrade Apache can hand over".into());
        }
        // SAFETY: host call with the request handle it gave us, during `handle`.
        let fd = unsafe { accept(self.raw.host_request) };
        if fd < 0 {
            return Err(
                "the connection could not be handed over (already taken, or no descriptors left)"
                    .into(),
            );
        }
        // SAFETY: the host gives up this descriptor: the application owns it now.
        Ok(unsafe { UnixStream::from_raw_fd(fd) })
    }

    /// A body reader not tied to this borrow, for response streams that keep reading the
    /// request body after `handle` returns.
    ///
    /// # Safety
    /// Use it only on this request's thread, until the host closes the response body (the
    /// ABI allows host calls during `body_next`/`body_close`).
    #[cfg(feature = "tower")]
    pub(crate) unsafe fn detached_body_reader(&self) -> BodyReader<'static> {
        BodyReader {
            host_request: self.raw.host_request,
            host: self.host,
            _request: std::marker::PhantomData,
        }
    }

    /// The request body, read from the client as the application consumes it. Chunked bodies
    /// arrive de-chunked; a body beyond `LimitRequestBody` is an error (and Apache answers 413).
    pub fn body(&mut self) -> BodyReader<'_> {
        BodyReader {
            host_request: self.raw.host_request,
            host: self.host,
            _request: std::marker::PhantomData,
        }
    }
}

/// Reads the request body; see [`Request::body`].
pub struct BodyReader<'r> {
    host_request: *mut abi::HostRequest,
    host: &'static HostV1,
    _request: std::marker::PhantomData<&'r mut ()>,
}

impl BodyReader<'_> {
    /// Whether [`BodyReader::read_now`] can say "nothing yet" (a host of ABI 1.4 or later
    /// that waits for a pending body); with an older host it waits like `read`.
    pub fn reads_without_waiting(&self) -> bool {
        self.host.has_trailers_and_duplex() && self.host.accepts_pending()
    }

    /// Reads what has arrived without waiting for more: `Ok(Some(n))` (0 at the end of the
    /// body), or `Ok(None)` when nothing has arrived yet.
    pub fn read_now(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        if !self.reads_without_waiting() {
            return io::Read::read(self, buf).map(Some);
        }
        // SAFETY: host call with a writable buffer of `buf.len()` bytes.
        let n =
            unsafe { (self.host.read_body_now)(self.host_request, buf.as_mut_ptr(), buf.len()) };
        if n == abi::READ_WOULD_BLOCK {
            return Ok(None);
        }
        usize::try_from(n).map(Some).map_err(|_| unreadable())
    }

    /// A descriptor that becomes readable when more of the body may have arrived (then
    /// [`BodyReader::read_now`] tells), during `handle`; `None` when the host has none.
    pub fn input_fd(&self) -> Option<std::os::fd::RawFd> {
        if !self.reads_without_waiting() {
            return None;
        }
        // SAFETY: host call with this request's handle.
        let fd = unsafe { (self.host.input_fd)(self.host_request) };
        (fd >= 0).then_some(fd)
    }

    /// The request's trailers, once the body was read to its end (see [`Request::trailers`]).
    pub fn trailers(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        each_trailer(self.host, self.host_request, &mut |n, v| {
            out.push((n.to_vec(), v.to_vec()))
        });
        out
    }
}

fn unreadable() -> io::Error {
    io::Error::other(
        "the request body could not be read: the client sent a malformed or oversized body, or went away",
    )
}

/// Visits the request's trailers, if the host (ABI 1.4 on) has them.
fn each_trailer<'a>(
    host: &'static HostV1,
    request: *mut abi::HostRequest,
    visit: &mut dyn FnMut(&'a [u8], &'a [u8]),
) {
    if !host.has_trailers_and_duplex() {
        return;
    }
    let mut visit = Visitor {
        visit,
        panic: CarriedPanic::default(),
    };
    // SAFETY: host call; `visit_pair` calls `visit` with strings from the request pool.
    unsafe { (host.each_trailer)(request, visit_pair, (&raw mut visit).cast()) };
    visit.panic.resume();
}

impl io::Read for BodyReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: host call with a writable buffer of `buf.len()` bytes.
        let n = unsafe { (self.host.read_body)(self.host_request, buf.as_mut_ptr(), buf.len()) };
        usize::try_from(n).map_err(|_| unreadable())
    }
}

/// A host string as text: Apache hands over the request line's fields as received; they are
/// ASCII in practice, and a non-UTF-8 one is shown as empty rather than trusted.
fn text<'a>(s: Str) -> &'a str {
    // SAFETY: the host's request strings live until the request ends, which outlives 'a.
    std::str::from_utf8(unsafe { s.as_bytes() }).unwrap_or("")
}

/// What `visit_pair` is handed: the application's visitor, and a panic of it to raise again
/// once the host returns.
struct Visitor<'v, 'a> {
    visit: &'v mut dyn FnMut(&'a [u8], &'a [u8]),
    panic: CarriedPanic,
}

unsafe extern "C" fn visit_pair(context: *mut c_void, name: Str, value: Str) {
    // SAFETY: `context` is the `Visitor` passed by `for_each_*` above; the strings live in the
    // request pool for the rest of the request.
    let (visitor, name, value) = unsafe {
        (
            &mut *context.cast::<Visitor<'_, '_>>(),
            name.as_bytes(),
            value.as_bytes(),
        )
    };
    let visit = &mut visitor.visit;
    visitor.panic.run(|| visit(name, value));
}
