//! `RustAppTrustedProxies` and `RustAppTrustedProxyHeaders`: which peers may tell an
//! application about the original request (a TLS-terminating load balancer), and through which
//! headers. From anyone else those headers are removed before the application sees them, as
//! mod_wsgi's `WSGITrustedProxies`/`WSGITrustedProxyHeaders` do.

use std::net::IpAddr;

/// An address or a network (`10.0.0.0/8`, `::1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    pub(crate) fn parse(text: &str) -> Result<Network, String> {
        let bad = || {
            format!(
                "RustAppTrustedProxies: '{text}' is not an IP address or network (like 10.0.0.0/8, 192.0.2.7 or 2001:db8::/32)"
            )
        };
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let bits = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= bits)
                .ok_or_else(bad)?,
            None => bits,
        };
        Ok(Network { addr, prefix })
    }

    pub(crate) fn contains(&self, addr: IpAddr) -> bool {
        // Both as IPv6 (an IPv4 address as its mapped form), the prefix counted to match.
        let bits = |addr: IpAddr| match addr {
            IpAddr::V4(v4) => v4.to_ipv6_mapped().to_bits(),
            IpAddr::V6(v6) => v6.to_bits(),
        };
        let prefix = u32::from(self.prefix) + if self.addr.is_ipv4() { 96 } else { 0 };
        let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
        bits(self.addr) & mask == bits(addr) & mask
    }
}

/// A header a trusted proxy may set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProxyHeader {
    /// The client's address (and the proxies in between).
    XForwardedFor,
    /// `http` or `https`: the scheme the client used.
    XForwardedProto,
    /// The `Host` the client asked for.
    XForwardedHost,
    /// The port the client connected to.
    XForwardedPort,
    /// RFC 7239's `for=`, `proto=` and `host=`.
    Forwarded,
}

impl ProxyHeader {
    pub(crate) const ALL: [ProxyHeader; 5] = [
        ProxyHeader::XForwardedFor,
        ProxyHeader::XForwardedProto,
        ProxyHeader::XForwardedHost,
        ProxyHeader::XForwardedPort,
        ProxyHeader::Forwarded,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            ProxyHeader::XForwardedFor => "X-Forwarded-For",
            ProxyHeader::XForwardedProto => "X-Forwarded-Proto",
            ProxyHeader::XForwardedHost => "X-Forwarded-Host",
            ProxyHeader::XForwardedPort => "X-Forwarded-Port",
            ProxyHeader::Forwarded => "Forwarded",
        }
    }

    pub(crate) fn parse(text: &str) -> Result<ProxyHeader, String> {
        ProxyHeader::ALL
            .into_iter()
            .find(|h| h.name().eq_ignore_ascii_case(text))
            .ok_or_else(|| {
                let allowed: Vec<&str> = ProxyHeader::ALL.iter().map(|h| h.name()).collect();
                format!(
                    "RustAppTrustedProxyHeaders: '{text}' is not a header it knows; allowed: {}",
                    allowed.join(", ")
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_contain_what_they_should() {
        let net = Network::parse("10.0.0.0/8").unwrap();
        assert!(net.contains("10.1.2.3".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.9.9.9".parse().unwrap()));
        let one = Network::parse("127.0.0.1").unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        let v6 = Network::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8:1::7".parse().unwrap()));
        assert!(!v6.contains("2001:db9::1".parse().unwrap()));
        assert!(
            Network::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        for bad in ["10.0.0.0/33", "example.com", "10.0.0/8", ""] {
            assert!(Network::parse(bad).unwrap_err().contains(bad), "{bad}");
        }
    }

    #[test]
    fn header_names_are_checked() {
        assert_eq!(
            ProxyHeader::parse("x-forwarded-proto"),
            Ok(ProxyHeader::XForwardedProto)
        );
        assert!(
            ProxyHeader::parse("X-Real-IP")
                .unwrap_err()
                .contains("allowed: X-Forwarded-For")
        );
    }
}
