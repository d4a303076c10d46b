//! The host's state for one request while an application handles it: what the application can
//! read of the request, and the response head it sets. Behind the ABI's `HostRequest` handle.

use std::cell::{Cell, RefCell};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;

use rustapp::abi::{HostRequest, RequestV1, Str};

use super::forwarded::ProxyView;
use super::head::{HeadBuilder, HeaderUse, ResponseHead, check_trailer};
use super::upgrade::{offered, socket_pair};
use super::whole_body::WholeBodySlot;
use crate::ffi::{BodyInput, ReadNow, Request, ServerVar};

pub(crate) struct Exchange<'r> {
    request: Request<'r>,
    script_name: &'r str,
    pass_authorization: bool,
    /// A user store is being asked about the request, before any handler: its body is not
    /// the store's to read, and there is no response to set.
    checking_user: bool,
    /// The declared body length, or -1 (read once: every mode asks for it).
    content_length: i64,
    body_input: RefCell<BodyInput<'r>>,
    head: RefCell<HeadBuilder>,
    /// The protocols the client offers to switch to, when its connection can be handed over.
    upgrade_offer: Option<&'r [u8]>,
    /// The host's end of the connection an application took over.
    tunnel_end: RefCell<Option<UnixStream>>,
    /// What a trusted proxy says of the original request (or which headers to hide).
    proxy: ProxyView<'r>,
    /// Whether response trailers reach the client, decided at the first one.
    trailers_go_out: Cell<Option<bool>>,
    /// The whole body the application handed over during `handle` (`set_body`), in the
    /// request pool.
    whole_body: RefCell<WholeBodySlot<&'r [u8]>>,
}

/// CGI variables computed from the request itself, and those of Apache's own CGI environment
/// (`ap_add_common_vars`, what mod_wsgi gives a WSGI application); they win over `SetEnv`
/// values of the same name, as in Apache's CGI environment.
const REQUEST_VARS: [(&str, Computed); 24] = [
    ("REQUEST_METHOD", Computed::RequestMethod),
    ("REQUEST_URI", Computed::RequestUri),
    ("SERVER_PROTOCOL", Computed::ServerProtocol),
    ("SCRIPT_NAME", Computed::ScriptName),
    ("PATH_INFO", Computed::PathInfo),
    ("QUERY_STRING", Computed::QueryString),
    ("REMOTE_ADDR", Computed::RemoteAddr),
    ("REMOTE_PORT", Computed::RemotePort),
    ("REMOTE_USER", Computed::RemoteUser),
    ("AUTH_TYPE", Computed::AuthType),
    ("SERVER_NAME", Computed::ServerName),
    ("SERVER_PORT", Computed::ServerPort),
    ("SERVER_ADDR", Computed::ServerAddr),
    ("HTTPS", Computed::Https),
    ("CONTENT_TYPE", Computed::ContentType),
    ("CONTENT_LENGTH", Computed::ContentLength),
    ("REQUEST_SCHEME", Computed::RequestScheme),
    ("SERVER_SOFTWARE", Computed::ServerSoftware),
    ("GATEWAY_INTERFACE", Computed::GatewayInterface),
    ("DOCUMENT_ROOT", Computed::DocumentRoot),
    ("CONTEXT_PREFIX", Computed::ContextPrefix),
    ("CONTEXT_DOCUMENT_ROOT", Computed::ContextDocumentRoot),
    ("SERVER_ADMIN", Computed::ServerAdmin),
    ("SCRIPT_FILENAME", Computed::ScriptFilename),
];

/// A variable computed from the request (see `REQUEST_VARS`): named once, in the table, so
/// that giving them all needs no comparison of names.
#[derive(Clone, Copy)]
enum Computed {
    RequestMethod,
    RequestUri,
    ServerProtocol,
    ScriptName,
    PathInfo,
    QueryString,
    RemoteAddr,
    RemotePort,
    RemoteUser,
    AuthType,
    ServerName,
    ServerPort,
    ServerAddr,
    Https,
    ContentType,
    ContentLength,
    RequestScheme,
    ServerSoftware,
    GatewayInterface,
    DocumentRoot,
    ContextPrefix,
    ContextDocumentRoot,
    ServerAdmin,
    ScriptFilename,
}

/// Which computed variable `name` is, if it is one.
fn computed_var(name: &[u8]) -> Option<Computed> {
    REQUEST_VARS
        .iter()
        .find(|(known, _)| known.as_bytes() == name)
        .map(|&(_, which)| which)
}

/// `Content-Length` as a number, or -1 when the client declared none (chunked or no body).
fn declared_length(request: Request<'_>) -> i64 {
    request
        .headers_in()
        .get(b"Content-Length")
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .unwrap_or(-1)
}

/// Credentials Apache may have checked already; not the application's unless configured.
fn is_credentials(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"authorization") || name.eq_ignore_ascii_case(b"proxy-authorization")
}

/// Whether a comma-separated header value (`TE: trailers, deflate;q=0.5`) lists `token`.
fn lists_token(value: &[u8], token: &[u8]) -> bool {
    value.split(|&b| b == b',').any(|item| {
        let name = item.split(|&b| b == b';').next().unwrap_or_default();
        name.trim_ascii().eq_ignore_ascii_case(token)
    })
}

fn non_empty(value: &[u8]) -> Option<&[u8]> {
    (!value.is_empty()).then_some(value)
}

impl<'r> Exchange<'r> {
    pub(crate) fn new(
        request: Request<'r>,
        script_name: &'r str,
        pass_authorization: bool,
    ) -> Exchange<'r> {
        let content_length = declared_length(request);
        let headers = request.headers_in();
        let has_body = content_length > 0 || headers.get(b"Transfer-Encoding").is_some();
        // Most requests offer no upgrade: one lookup says so.
        let upgrade_offer = headers.get(b"Upgrade").and_then(|upgrade| {
            let connection = headers.get(b"Connection");
            offered(
                request.method(),
                request.protocol(),
                upgrade,
                connection,
                has_body,
            )
        });
        Exchange {
            request,
            script_name,
            pass_authorization,
            checking_user: false,
            content_length,
            body_input: RefCell::new(request.body_input()),
            head: RefCell::new(
                upgrade_offer.map_or_else(HeadBuilder::default, HeadBuilder::offering),
            ),
            upgrade_offer,
            tunnel_end: RefCell::new(None),
            proxy: ProxyView::of(request),
            trailers_go_out: Cell::new(None),
            whole_body: RefCell::default(),
        }
    }

    /// The exchange for asking a user store about `request`: no `Authorization`, an empty
    /// body, no response.
    pub(crate) fn for_user_check(request: Request<'r>, script_name: &'r str) -> Exchange<'r> {
        Exchange {
            checking_user: true,
            head: RefCell::new(HeadBuilder::default()),
            upgrade_offer: None,
            ..Exchange::new(request, script_name, false)
        }
    }

    pub(crate) fn request(&self) -> Request<'r> {
        self.request
    }

    /// The declared body length, or -1 when the client declared none (chunked or no body).
    pub(crate) fn content_length(&self) -> i64 {
        self.content_length
    }

    /// The protocols the client offers to switch to, while the offer stands.
    pub(crate) fn upgrade_offer(&self) -> Option<&'r [u8]> {
        self.upgrade_offer
            .filter(|_| self.head.borrow().offered().is_some())
    }

    /// The application predates upgrades: no offer after all.
    pub(crate) fn withdraw_upgrade_offer(&self) {
        self.head.borrow_mut().withdraw_offer();
    }

    /// An application takes the connection over: its end of a socket pair whose other end
    /// this exchange keeps for the relay.
    pub(crate) fn accept_upgrade(&self) -> Option<OwnedFd> {
        if self.upgrade_offer().is_none() || self.tunnel_end.borrow().is_some() {
            return None;
        }
        let (host_end, app_end) = socket_pair()
            .inspect_err(|e| log::error!("cannot hand a connection over: {e}"))
            .ok()?;
        self.head.borrow_mut().accept_upgrade();
        *self.tunnel_end.borrow_mut() = Some(host_end);
        Some(app_end)
    }

    /// A daemon's application took the connection over: the relay runs through the daemon.
    pub(crate) fn accept_upgrade_in_daemon(&self) -> bool {
        self.head.borrow_mut().accept_upgrade()
    }

    /// The host's end of the connection the application took over.
    pub(crate) fn take_tunnel_end(&self) -> Option<UnixStream> {
        self.tunnel_end.borrow_mut().take()
    }

    /// The protocol a 101 switches to.
    pub(crate) fn upgrade_protocol(&self) -> Vec<u8> {
        self.head.borrow().upgrade().to_vec()
    }

    /// Whether the client sends a body (a length above 0, or chunked).
    pub(crate) fn has_body(&self) -> bool {
        self.content_length() > 0
            || self
                .request
                .headers_in()
                .get(b"Transfer-Encoding")
                .is_some()
    }

    /// Whether the request is a gRPC call (`Content-Type: application/grpc...`).
    pub(crate) fn is_grpc(&self) -> bool {
        self.request
            .headers_in()
            .get(b"Content-Type")
            .is_some_and(|value| value.starts_with(b"application/grpc"))
    }

    /// Where the application is mounted (`SCRIPT_NAME`).
    pub(crate) fn script_name(&self) -> &'r str {
        self.script_name
    }

    /// The ABI view of the request, borrowing Apache's strings; its `host_request` is this
    /// exchange, as the embedded host table expects.
    pub(crate) fn abi_request(&self) -> RequestV1 {
        let handle = (self as *const Exchange<'_>)
            .cast_mut()
            .cast::<HostRequest>();
        let r = self.request;
        let content_length = self.content_length();
        RequestV1 {
            size: size_of::<RequestV1>() as u32,
            host_request: handle,
            method: Str::from_bytes(r.method()),
            uri: Str::from_bytes(r.unparsed_uri()),
            protocol: Str::from_bytes(r.protocol()),
            script_name: Str::from_bytes(self.script_name.as_bytes()),
            path_info: Str::from_bytes(r.path_info()),
            query_string: Str::from_bytes(r.query_string()),
            content_length,
            upgrade: Str::from_bytes(self.upgrade_offer().unwrap_or_default()),
        }
    }

    pub(crate) fn header(&self, name: &[u8]) -> Option<&'r [u8]> {
        if (is_credentials(name) && !self.pass_authorization) || self.proxy.hides(name) {
            return None;
        }
        match self.proxy.host {
            Some(host) if name.eq_ignore_ascii_case(b"host") => Some(host),
            _ => self.request.headers_in().get(name),
        }
    }

    pub(crate) fn each_header(&self, mut visit: impl FnMut(&[u8], &[u8])) {
        for (name, value) in self.request.headers_in().entries() {
            if (is_credentials(name) && !self.pass_authorization) || self.proxy.hides(name) {
                continue;
            }
            match self.proxy.host {
                // The client's own `Host`, as a trusted proxy reports it.
                Some(host) if name.eq_ignore_ascii_case(b"host") => visit(name, host),
                _ => visit(name, value),
            }
        }
    }

    pub(crate) fn var(&self, name: &[u8]) -> Option<&'r [u8]> {
        match computed_var(name) {
            Some(which) => self.computed_var(which),
            None => self.request.subprocess_env().get(name),
        }
    }

    pub(crate) fn each_var(&self, mut visit: impl FnMut(&[u8], &[u8])) {
        for (name, which) in REQUEST_VARS {
            if let Some(value) = self.computed_var(which) {
                visit(name.as_bytes(), value);
            }
        }
        for (name, value) in self.request.subprocess_env().entries() {
            if computed_var(name).is_none() {
                visit(name, value);
            }
        }
    }

    fn computed_var(&self, which: Computed) -> Option<&'r [u8]> {
        let r = self.request;
        let pool = r.pool();
        match which {
            Computed::RequestMethod => Some(r.method()),
            Computed::RequestUri => Some(r.unparsed_uri()),
            Computed::ServerProtocol => Some(r.protocol()),
            Computed::ScriptName => Some(self.script_name.as_bytes()),
            Computed::PathInfo => Some(r.path_info()),
            Computed::QueryString => Some(r.query_string()),
            Computed::RemoteAddr => self.proxy.client.or_else(|| non_empty(r.client_ip())),
            // The port a proxied client used is not known.
            Computed::RemotePort if self.proxy.client.is_some() => None,
            Computed::RemotePort => r
                .client_port()
                .map(|p| pool.decimal(i64::from(p)).to_bytes()),
            Computed::RemoteUser => non_empty(r.user()),
            Computed::AuthType => non_empty(r.auth_type()),
            Computed::ServerName => self
                .proxy
                .server_name()
                .or_else(|| non_empty(r.server_name())),
            Computed::ServerPort => {
                let port = self.proxy.server_port().unwrap_or_else(|| r.server_port());
                Some(pool.decimal(i64::from(port)).to_bytes())
            }
            Computed::ServerAddr => non_empty(r.local_ip()),
            Computed::Https => self
                .proxy
                .https
                .unwrap_or_else(|| r.is_https())
                .then_some(b"on".as_slice()),
            Computed::ContentType => r.headers_in().get(b"Content-Type"),
            Computed::ContentLength => r.headers_in().get(b"Content-Length"),
            Computed::RequestScheme => match self.proxy.https {
                Some(true) => Some(b"https".as_slice()),
                Some(false) => Some(b"http".as_slice()),
                None => r.server_var(ServerVar::RequestScheme),
            },
            Computed::ServerSoftware => r.server_var(ServerVar::ServerSoftware),
            Computed::GatewayInterface => Some(b"CGI/1.1".as_slice()),
            Computed::DocumentRoot => r.server_var(ServerVar::DocumentRoot),
            Computed::ContextPrefix => r.server_var(ServerVar::ContextPrefix),
            Computed::ContextDocumentRoot => r.server_var(ServerVar::ContextDocumentRoot),
            Computed::ServerAdmin => r.server_var(ServerVar::ServerAdmin),
            Computed::ScriptFilename => r.server_var(ServerVar::ScriptFilename),
        }
    }

    pub(crate) fn read_body(&self, buf: &mut [u8]) -> Option<usize> {
        if self.checking_user {
            return Some(0);
        }
        self.body_input.borrow_mut().read(buf)
    }

    /// Request body that has arrived, without waiting for the client.
    pub(crate) fn read_body_now(&self, buf: &mut [u8]) -> ReadNow {
        if self.checking_user {
            return ReadNow::Read(0);
        }
        self.body_input.borrow_mut().read_now(buf)
    }

    /// Appends to `into` at most `room` bytes of request body, waiting for the client with
    /// `wait`; as `read_body` and `read_body_now`, without a buffer to zero first.
    pub(crate) fn read_body_appending(
        &self,
        into: &mut Vec<u8>,
        room: usize,
        wait: bool,
    ) -> ReadNow {
        if self.checking_user {
            return ReadNow::Read(0);
        }
        self.body_input
            .borrow_mut()
            .read_appending(into, room, wait)
    }

    /// The trailers the client sent after its body (once the body was read to its end).
    pub(crate) fn each_trailer(&self, mut visit: impl FnMut(&[u8], &[u8])) {
        if self.checking_user {
            return;
        }
        for (name, value) in self.request.trailers_in().entries() {
            visit(name, value);
        }
    }

    /// A response trailer: refused (and logged) when it breaks a rule, dropped (with a debug
    /// line) where the client cannot take trailers.
    pub(crate) fn add_trailer(&self, name: &[u8], value: &[u8]) -> bool {
        if self.checking_user {
            return false;
        }
        if let Err(problem) = check_trailer(name, value) {
            log::error!("a response trailer was dropped: {problem}");
            return false;
        }
        if self.trailers_go_out() {
            self.request.add_response_trailer(name, value);
        } else {
            log::debug!(
                "trailer {} dropped: over HTTP/1.x only a client that sent `TE: trailers` gets trailers",
                String::from_utf8_lossy(name)
            );
        }
        true
    }

    /// Whether trailers reach this client: always over HTTP/2 (mod_http2 sends them); over
    /// HTTP/1.1 when the client said it takes them, in the last chunk of a chunked body.
    fn trailers_go_out(&self) -> bool {
        if let Some(decided) = self.trailers_go_out.get() {
            return decided;
        }
        let r = self.request;
        let http2 = r.is_http2();
        let decided = http2
            || (r.protocol() == b"HTTP/1.1"
                && r.headers_in()
                    .get(b"TE")
                    .is_some_and(|te| lists_token(te, b"trailers")));
        if decided && !http2 {
            // The response pipeline sends the head before the body's end, so that the body
            // goes chunked, which is what carries trailers (`respond::end`).
            r.send_trailers_in_last_chunk();
        }
        self.trailers_go_out.set(Some(decided));
        decided
    }

    /// The status Apache chose when the body could not be read (e.g. 413), if that happened.
    pub(crate) fn body_failure_status(&self) -> Option<u16> {
        self.body_input.borrow().failure_status()
    }

    pub(crate) fn set_status(&self, status: u32) -> bool {
        if self.checking_user {
            return false;
        }
        self.head.borrow_mut().set_status(status)
    }

    pub(crate) fn add_header(&self, name: &[u8], value: &[u8]) -> bool {
        if self.checking_user {
            return false;
        }
        let accepted = self.head.borrow_mut().header(name, value);
        match accepted {
            Some(HeaderUse::Plain) => self.request.add_response_header(name, value),
            Some(HeaderUse::ContentType) => self.request.set_content_type(value),
            Some(HeaderUse::ContentLength(_)) => self.request.add_response_header(name, value),
            // Apache manages the connection itself; a 101's `Upgrade` goes out with it, and
            // `X-Sendfile` names the body.
            Some(HeaderUse::HopByHop | HeaderUse::Upgrade | HeaderUse::Sendfile) => {}
            None => return false,
        }
        true
    }

    /// Keeps a copy of the whole response body, given instead of an open body.
    pub(crate) fn set_body(&self, body: &[u8]) -> bool {
        !self.checking_user
            && self
                .whole_body
                .borrow_mut()
                .give(|| self.request.pool().copy(body))
    }

    /// The whole body the application handed over, if it did; none is taken after this.
    pub(crate) fn take_whole_body(&self) -> Option<&'r [u8]> {
        self.whole_body.borrow_mut().take()
    }

    /// The file the application asked Apache to send as the body (`X-Sendfile`).
    pub(crate) fn sendfile(&self) -> Option<Vec<u8>> {
        self.head.borrow().sendfile().map(<[u8]>::to_vec)
    }

    /// The head the application set, or the first thing in it the host refused.
    pub(crate) fn finish_head(&self) -> Result<ResponseHead, String> {
        self.head.borrow().finish()
    }
}
