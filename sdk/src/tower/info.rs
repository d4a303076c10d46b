use std::net::SocketAddr;

use crate::Request;

/// What Apache knows about a request beyond HTTP itself, in the request's extensions:
/// `request.extensions().get::<rustapp::tower::RequestInfo>()`, or axum's
/// `Extension<RequestInfo>` extractor.
#[derive(Clone, Debug, Default)]
pub struct RequestInfo {
    /// Where the application is mounted (`SCRIPT_NAME`); the service sees paths below it.
    pub script_name: String,
    /// The decoded path below the mount point (`PATH_INFO`).
    pub path_info: String,
    /// The request target exactly as the client sent it, mount point included.
    pub request_uri: String,
    /// The client's address and port (`REMOTE_ADDR`, `REMOTE_PORT`).
    pub remote_addr: Option<SocketAddr>,
    /// The user Apache authenticated (`REMOTE_USER`).
    pub remote_user: Option<String>,
    /// `Basic`, `Digest`, ... when Apache authenticated the request (`AUTH_TYPE`).
    pub auth_type: Option<String>,
    /// Whether the client connected over TLS (`HTTPS`).
    pub https: bool,
    /// Every CGI-style variable, `SetEnv`/`PassEnv` values included.
    pub vars: Vec<(String, String)>,
}

impl RequestInfo {
    pub(crate) fn from_request(request: &Request<'_>) -> RequestInfo {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let vars: Vec<(String, String)> = request
            .vars()
            .into_iter()
            .map(|(n, v)| (text(n), text(v)))
            .collect();
        let var = |name: &str| vars.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
        let remote_addr = var("REMOTE_ADDR")
            .zip(var("REMOTE_PORT"))
            .and_then(|(ip, port)| {
                format!("{ip}:{port}")
                    .parse()
                    .ok()
                    .or_else(|| format!("[{ip}]:{port}").parse().ok())
            });
        RequestInfo {
            script_name: request.script_name().to_owned(),
            path_info: request.path_info().to_owned(),
            request_uri: request.uri().to_owned(),
            remote_addr,
            remote_user: var("REMOTE_USER"),
            auth_type: var("AUTH_TYPE"),
            https: var("HTTPS").is_some_and(|v| v.eq_ignore_ascii_case("on")),
            vars,
        }
    }

    /// One CGI-style variable.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}
