//! What a trusted proxy (a TLS-terminating load balancer) says about the original request:
//! the client's address, the scheme, host and port it used. Only from a peer in
//! `RustAppTrustedProxies`, and only through `RustAppTrustedProxyHeaders`; from anyone else
//! those headers are hidden from the application, so that a client cannot claim them.

use std::net::IpAddr;

use crate::config::{ProxyHeader, ServerConfig};
use crate::ffi::Request;

/// The original request as a trusted proxy described it; empty when there is none.
#[derive(Default)]
pub(crate) struct ProxyView<'r> {
    /// Proxy headers the application must not see (sent by an untrusted peer).
    pub(crate) hidden: &'r [ProxyHeader],
    pub(crate) client: Option<&'r [u8]>,
    pub(crate) https: Option<bool>,
    /// The `Host` the client asked for (a name, perhaps with a port).
    pub(crate) host: Option<&'r [u8]>,
    pub(crate) port: Option<u16>,
}

impl<'r> ProxyView<'r> {
    /// The view of `request`, by its server's configuration.
    pub(crate) fn of(request: Request<'r>) -> ProxyView<'r> {
        let Some(config) = request.server().module_config::<ServerConfig>() else {
            return ProxyView::default();
        };
        let honoured = config.proxy_headers();
        if honoured.is_empty() {
            return ProxyView::default();
        }
        let peer = std::str::from_utf8(request.peer_ip())
            .ok()
            .and_then(|p| p.parse::<IpAddr>().ok());
        if !peer.is_some_and(|peer| config.trusts_proxy(peer)) {
            return ProxyView {
                hidden: honoured,
                ..ProxyView::default()
            };
        }
        let headers = request.headers_in();
        let mut view = ProxyView::default();
        for &header in honoured {
            let Some(value) = headers.get(header.name().as_bytes()) else {
                continue;
            };
            match header {
                ProxyHeader::XForwardedFor => {
                    view.client = client_from_chain(value, |a| config.trusts_proxy(a))
                }
                ProxyHeader::XForwardedProto => view.https = scheme(first(value)),
                ProxyHeader::XForwardedHost => view.host = Some(first(value)),
                ProxyHeader::XForwardedPort => view.port = port(first(value)),
                ProxyHeader::Forwarded => {
                    // The element the nearest proxy added is the last one.
                    let element = value.rsplit(|&b| b == b',').next().unwrap_or_default();
                    for pair in element.split(|&b| b == b';') {
                        let Some((name, value)) = split_once(pair, b'=') else {
                            continue;
                        };
                        let value = unquote(value.trim_ascii());
                        match name.trim_ascii().to_ascii_lowercase().as_slice() {
                            b"for" => view.client = Some(node_address(value)),
                            b"proto" => view.https = scheme(value),
                            b"host" => view.host = Some(value),
                            _ => {}
                        }
                    }
                }
            }
        }
        view
    }

    /// The port the client connected to, if the proxy said: its port, else the one in its
    /// host, else the scheme's.
    pub(crate) fn server_port(&self) -> Option<u16> {
        let in_host = self.host.and_then(|h| host_and_port(h).1);
        let by_scheme = self.https.map(|https| if https { 443 } else { 80 });
        self.port.or(in_host).or(by_scheme)
    }

    /// The host name the client asked for, without its port.
    pub(crate) fn server_name(&self) -> Option<&'r [u8]> {
        self.host.map(|h| host_and_port(h).0)
    }

    pub(crate) fn hides(&self, name: &[u8]) -> bool {
        self.hidden
            .iter()
            .any(|h| h.name().as_bytes().eq_ignore_ascii_case(name))
    }
}

/// The client in an `X-Forwarded-For` chain: the nearest address that is not a trusted proxy
/// (each proxy appends the address it saw), else the first.
fn client_from_chain(chain: &[u8], trusted: impl Fn(IpAddr) -> bool) -> Option<&[u8]> {
    let hops: Vec<&[u8]> = chain
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|h| !h.is_empty())
        .collect();
    let is_trusted = |hop: &[u8]| {
        std::str::from_utf8(hop)
            .ok()
            .and_then(|h| h.parse::<IpAddr>().ok())
            .is_some_and(&trusted)
    };
    hops.iter()
        .rev()
        .find(|hop| !is_trusted(hop))
        .or(hops.first())
        .copied()
}

fn first(value: &[u8]) -> &[u8] {
    value
        .split(|&b| b == b',')
        .next()
        .unwrap_or_default()
        .trim_ascii()
}

fn scheme(value: &[u8]) -> Option<bool> {
    if value.eq_ignore_ascii_case(b"https") {
        Some(true)
    } else if value.eq_ignore_ascii_case(b"http") {
        Some(false)
    } else {
        None
    }
}

fn port(value: &[u8]) -> Option<u16> {
    std::str::from_utf8(value).ok()?.parse().ok()
}

fn split_once(value: &[u8], at: u8) -> Option<(&[u8], &[u8])> {
    let i = value.iter().position(|&b| b == at)?;
    Some((&value[..i], &value[i + 1..]))
}

fn unquote(value: &[u8]) -> &[u8] {
    value
        .strip_prefix(b"\"")
        .and_then(|v| v.strip_suffix(b"\""))
        .unwrap_or(value)
}

/// RFC 7239's node: `192.0.2.7`, `192.0.2.7:4711`, `[2001:db8::1]:4711`: its address.
fn node_address(node: &[u8]) -> &[u8] {
    if let Some(v6) = node.strip_prefix(b"[") {
        return v6.split(|&b| b == b']').next().unwrap_or_default();
    }
    node.split(|&b| b == b':').next().unwrap_or_default()
}

/// `example.com:8443` as (`example.com`, 8443); `[::1]:80` as (`[::1]`, 80).
fn host_and_port(host: &[u8]) -> (&[u8], Option<u16>) {
    let colon = match host.iter().rposition(|&b| b == b':') {
        Some(i) if !host[i..].contains(&b']') => i,
        _ => return (host, None),
    };
    match port(&host[colon + 1..]) {
        Some(p) => (&host[..colon], Some(p)),
        None => (host, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_is_the_nearest_untrusted_hop() {
        let trusted = |a: IpAddr| a.to_string().starts_with("10.");
        let chain = b"203.0.113.9, 198.51.100.2, 10.0.0.5";
        assert_eq!(
            client_from_chain(chain, trusted),
            Some(&b"198.51.100.2"[..])
        );
        assert_eq!(
            client_from_chain(b"10.0.0.1, 10.0.0.2", trusted),
            Some(&b"10.0.0.1"[..])
        );
        assert_eq!(client_from_chain(b"", trusted), None);
    }

    #[test]
    fn forwarded_nodes_and_hosts_are_parsed() {
        assert_eq!(node_address(b"192.0.2.7:4711"), b"192.0.2.7");
        assert_eq!(node_address(b"[2001:db8::1]:4711"), b"2001:db8::1");
        assert_eq!(
            host_and_port(b"example.com:8443"),
            (&b"example.com"[..], Some(8443))
        );
        assert_eq!(host_and_port(b"[::1]"), (&b"[::1]"[..], None));
        assert_eq!(host_and_port(b"example.com"), (&b"example.com"[..], None));
        assert_eq!(scheme(b"HTTPS"), Some(true));
        assert_eq!(unquote(b"\"[::1]:80\""), b"[::1]:80");
    }
}
