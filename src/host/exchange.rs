//! The host's state for one request while an application handles it: what the application can
//! read of the request, and the response head it sets. Behind the ABI's `HostRequest` handle.

use std::cell::RefCell;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;

use rustapp::abi::{HostRequest, RequestV1, Str};

use super::forwarded::ProxyView;
use super::head::{HeadBuilder, HeaderUse, ResponseHead};
use super::upgrade::{offered, socket_pair};
use crate::ffi::{BodyInput, Request, ServerVar};

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
}

/// CGI variables computed from the request itself, and those of Apache's own CGI environment
/// (`ap_add_common_vars`, what mod_wsgi gives a WSGI application); they win over `SetEnv`
/// values of the same name, as in Apache's CGI environment.
const REQUEST_VARS: [&str; 24] = [
    "REQUEST_METHOD",
    "REQUEST_URI",
    "SERVER_PROTOCOL",
    "SCRIPT_NAME",
    "PATH_INFO",
    "QUERY_STRING",
    "REMOTE_ADDR",
    "REMOTE_PORT",
    "REMOTE_USER",
    "AUTH_TYPE",
    "SERVER_NAME",
    "SERVER_PORT",
    "SERVER_ADDR",
    "HTTPS",
    "CONTENT_TYPE",
    "CONTENT_LENGTH",
    "REQUEST_SCHEME",
    "SERVER_SOFTWARE",
    "GATEWAY_INTERFACE",
    "DOCUMENT_ROOT",
    "CONTEXT_PREFIX",
    "CONTEXT_DOCUMENT_ROOT",
    "SERVER_ADMIN",
    "SCRIPT_FILENAME",
];

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
        match std::str::from_utf8(name) {
            Ok(known) if REQUEST_VARS.contains(&known) => self.request_var(known),
            _ => self.request.subprocess_env().get(name),
        }
    }

    pub(crate) fn each_var(&self, mut visit: impl FnMut(&[u8], &[u8])) {
        for name in REQUEST_VARS {
            if let Some(value) = self.request_var(name) {
                visit(name.as_bytes(), value);
            }
        }
        for (name, value) in self.request.subprocess_env().entries() {
            let computed = std::str::from_utf8(name).is_ok_and(|n| REQUEST_VARS.contains(&n));
            if !computed {
                visit(name, value);
            }
        }
    }

    fn request_var(&self, name: &str) -> Option<&'r [u8]> {
        let r = self.request;
        let pool = r.pool();
        match name {
            "REQUEST_METHOD" => Some(r.method()),
            "REQUEST_URI" => Some(r.unparsed_uri()),
            "SERVER_PROTOCOL" => Some(r.protocol()),
            "SCRIPT_NAME" => Some(self.script_name.as_bytes()),
            "PATH_INFO" => Some(r.path_info()),
            "QUERY_STRING" => Some(r.query_string()),
            "REMOTE_ADDR" => self.proxy.client.or_else(|| non_empty(r.client_ip())),
            // The port a proxied client used is not known.
            "REMOTE_PORT" if self.proxy.client.is_some() => None,
            "REMOTE_PORT" => r
                .client_port()
                .map(|p| pool.decimal(i64::from(p)).to_bytes()),
            "REMOTE_USER" => non_empty(r.user()),
            "AUTH_TYPE" => non_empty(r.auth_type()),
            "SERVER_NAME" => self
                .proxy
                .server_name()
                .or_else(|| non_empty(r.server_name())),
            "SERVER_PORT" => {
                let port = self.proxy.server_port().unwrap_or_else(|| r.server_port());
                Some(pool.decimal(i64::from(port)).to_bytes())
            }
            "SERVER_ADDR" => non_empty(r.local_ip()),
            "HTTPS" => self
                .proxy
                .https
                .unwrap_or_else(|| r.is_https())
                .then_some(b"on".as_slice()),
            "CONTENT_TYPE" => r.headers_in().get(b"Content-Type"),
            "CONTENT_LENGTH" => r.headers_in().get(b"Content-Length"),
            "REQUEST_SCHEME" => match self.proxy.https {
                Some(true) => Some(b"https".as_slice()),
                Some(false) => Some(b"http".as_slice()),
                None => r.server_var(ServerVar::RequestScheme),
            },
            "SERVER_SOFTWARE" => r.server_var(ServerVar::ServerSoftware),
            "GATEWAY_INTERFACE" => Some(b"CGI/1.1".as_slice()),
            "DOCUMENT_ROOT" => r.server_var(ServerVar::DocumentRoot),
            "CONTEXT_PREFIX" => r.server_var(ServerVar::ContextPrefix),
            "CONTEXT_DOCUMENT_ROOT" => r.server_var(ServerVar::ContextDocumentRoot),
            "SERVER_ADMIN" => r.server_var(ServerVar::ServerAdmin),
            "SCRIPT_FILENAME" => r.server_var(ServerVar::ScriptFilename),
            _ => None,
        }
    }

    pub(crate) fn read_body(&self, buf: &mut [u8]) -> Option<usize> {
        if self.checking_user {
            return Some(0);
        }
        self.body_input.borrow_mut().read(buf)
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

    /// The file the application asked Apache to send as the body (`X-Sendfile`).
    pub(crate) fn sendfile(&self) -> Option<Vec<u8>> {
        self.head.borrow().sendfile().map(<[u8]>::to_vec)
    }

    /// The head the application set, or the first thing in it the host refused.
    pub(crate) fn finish_head(&self) -> Result<ResponseHead, String> {
        self.head.borrow().finish()
    }
}
