use std::net::SocketAddr;

use crate::Request;

/// What Apache knows about a request beyond HTTP itself, in the request's extensions:
/// `request.extensions().get::<rustapp::tower::RequestInfo>()`, or axum's
/// `Extension<RequestInfo>` extractor.
#[derive(Clone, Debug, Default)]
pub struct RequestInfo {
    /// Every CGI-style variable as `NAME\0VALUE\0` pairs, copied in one piece per request
    /// (Apache's values are C strings, so they never contain NUL). Copied whole because the
    /// service may read it on any thread, at any time, while Apache's request may be read
    /// only on the thread serving it; each accessor looks its variable up when asked.
    vars: Vec<u8>,
}

impl RequestInfo {
    pub(crate) fn from_request(request: &Request<'_>) -> RequestInfo {
        // Apache's CGI variables with mod_http2's or mod_ssl's take 1 to 2 KiB: one allocation.
        let mut vars = Vec::with_capacity(2048);
        request.copy_vars(&mut vars);
        RequestInfo { vars }
    }

    /// Where the application is mounted (`SCRIPT_NAME`); the service sees paths below it.
    pub fn script_name(&self) -> &str {
        self.var("SCRIPT_NAME").unwrap_or_default()
    }

    /// The decoded path below the mount point (`PATH_INFO`).
    pub fn path_info(&self) -> &str {
        self.var("PATH_INFO").unwrap_or_default()
    }

    /// The request target exactly as the client sent it, mount point included (`REQUEST_URI`).
    pub fn request_uri(&self) -> &str {
        self.var("REQUEST_URI").unwrap_or_default()
    }

    /// The client's address and port (`REMOTE_ADDR`, `REMOTE_PORT`); behind a trusted proxy
    /// (`RustAppTrustedProxies`), the address it reports, and no port.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        Some(SocketAddr::new(
            self.remote_ip()?,
            self.var("REMOTE_PORT")?.parse().ok()?,
        ))
    }

    /// The client's address, with or without a port.
    pub fn remote_ip(&self) -> Option<std::net::IpAddr> {
        self.var("REMOTE_ADDR")?.parse().ok()
    }

    /// Whether the client connected over TLS (`HTTPS`), to Apache or to a trusted proxy.
    pub fn https(&self) -> bool {
        self.var("HTTPS")
            .is_some_and(|on| on.eq_ignore_ascii_case("on"))
    }

    /// `https` or `http`: the scheme the client used (`REQUEST_SCHEME`).
    pub fn scheme(&self) -> &str {
        self.var("REQUEST_SCHEME")
            .unwrap_or(if self.https() { "https" } else { "http" })
    }

    /// The host name the client asked for (`SERVER_NAME`).
    pub fn host(&self) -> Option<&str> {
        self.var("SERVER_NAME")
    }

    /// The port the client connected to (`SERVER_PORT`).
    pub fn port(&self) -> Option<u16> {
        self.var("SERVER_PORT")?.parse().ok()
    }

    /// The user Apache authenticated (`REMOTE_USER`).
    pub fn remote_user(&self) -> Option<&str> {
        self.var("REMOTE_USER")
    }

    /// `Basic`, `Digest`, ... when Apache authenticated the request (`AUTH_TYPE`).
    pub fn auth_type(&self) -> Option<&str> {
        self.var("AUTH_TYPE")
    }

    /// One CGI-style variable: `SERVER_NAME`, `SetEnv`/`PassEnv` values, ... (`None` also
    /// for a value that is not UTF-8).
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// Every CGI-style variable whose name and value are UTF-8.
    pub fn vars(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut fields = self.vars.split(|&b| b == 0);
        std::iter::from_fn(move || Some((fields.next()?, fields.next()?)))
            .filter_map(|(n, v)| Some((std::str::from_utf8(n).ok()?, std::str::from_utf8(v).ok()?)))
    }
}
