//! What the host accepts from an application as a response head, in either mode. Anything else
//! becomes a 500 with a log line, never a split or malformed response on the wire.

/// How an accepted response header is applied.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HeaderUse {
    /// `Content-Type`: Apache keeps it in its own field (filters and logs read it there).
    ContentType,
    /// `Content-Length`: the body is held to exactly this many bytes.
    ContentLength(u64),
    /// Connection-level headers Apache manages itself; dropped.
    HopByHop,
    /// `Upgrade`: the protocol a 101 switches to, sent with that interim response only.
    Upgrade,
    /// `X-Sendfile`: a file Apache sends as the body, never shown to the client.
    Sendfile,
    /// Passed through as is.
    Plain,
}

/// 101 Switching Protocols: the one informational status an application may answer, to a
/// request that offered an upgrade.
pub(crate) const SWITCHING_PROTOCOLS: u16 = 101;

/// A status an application may answer with: 200–599 (informational codes are Apache's), and
/// 101 when the request offers an upgrade.
pub(crate) fn check_status(status: u32, upgrade_offered: bool) -> Result<u16, String> {
    match u16::try_from(status) {
        Ok(s) if (200..=599).contains(&s) => Ok(s),
        Ok(SWITCHING_PROTOCOLS) if upgrade_offered => Ok(SWITCHING_PROTOCOLS),
        Ok(SWITCHING_PROTOCOLS) => Err(
            "status 101 answers a request that offers an upgrade (a GET with Upgrade and Connection: upgrade, to an application built for ABI 1.3 or later); this one offers none"
                .to_owned(),
        ),
        _ => Err(format!(
            "status {status} is not a valid final HTTP status (200-599)"
        )),
    }
}

/// Checks a header against RFC 9110: the name a token, the value without CR, LF, NUL or other
/// control characters except tab.
pub(crate) fn check_header(name: &[u8], value: &[u8]) -> Result<HeaderUse, String> {
    if name.is_empty() || !name.iter().all(|&b| is_token_byte(b)) {
        return Err(format!(
            "header name {:?} is not a valid HTTP token",
            String::from_utf8_lossy(name)
        ));
    }
    if let Some(bad) = value
        .iter()
        .find(|&&b| (b < 0x20 && b != b'\t') || b == 0x7f)
    {
        return Err(format!(
            "header {} has a value with a forbidden control byte 0x{bad:02x} (CR, LF and NUL can split a response)",
            String::from_utf8_lossy(name)
        ));
    }
    let is = |candidate: &str| name.eq_ignore_ascii_case(candidate.as_bytes());
    if is("content-type") {
        Ok(HeaderUse::ContentType)
    } else if is("content-length") {
        std::str::from_utf8(value)
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .map(HeaderUse::ContentLength)
            .ok_or_else(|| {
                format!(
                    "Content-Length {:?} is not a number",
                    String::from_utf8_lossy(value)
                )
            })
    } else if is("upgrade") {
        Ok(HeaderUse::Upgrade)
    } else if is("x-sendfile") {
        Ok(HeaderUse::Sendfile)
    } else if [
        "connection",
        "keep-alive",
        "transfer-encoding",
        "te",
        "trailer",
        "proxy-connection",
    ]
    .iter()
    .any(|h| is(h))
    {
        Ok(HeaderUse::HopByHop)
    } else {
        Ok(HeaderUse::Plain)
    }
}

/// Fields a trailer may not carry: they frame, route or control the message, so a recipient
/// must have them before the body (RFC 9110, section 6.5.1).
const NOT_TRAILERS: [&str; 21] = [
    "content-length",
    "content-type",
    "content-encoding",
    "content-range",
    "transfer-encoding",
    "trailer",
    "te",
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "upgrade",
    "x-sendfile",
    "cache-control",
    "expires",
    "age",
    "date",
    "location",
    "retry-after",
    "vary",
    "www-authenticate",
];

/// Checks a response trailer: a header's rules, and none of the fields that must come before
/// the body.
pub(crate) fn check_trailer(name: &[u8], value: &[u8]) -> Result<(), String> {
    check_header(name, value)?;
    if NOT_TRAILERS
        .iter()
        .any(|field| name.eq_ignore_ascii_case(field.as_bytes()))
    {
        return Err(format!(
            "{} cannot be a trailer: it frames, routes or controls the response, so it belongs in the head",
            String::from_utf8_lossy(name)
        ));
    }
    Ok(())
}

/// A response head the host accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ResponseHead {
    pub(crate) status: u16,
    /// `Content-Length` as declared by the application, which the body is held to.
    pub(crate) content_length: Option<u64>,
}

/// A response head as an application sets it, checked as it goes; the first thing refused
/// turns the response into a 500 naming it.
#[derive(Debug)]
pub(crate) struct HeadBuilder {
    head: ResponseHead,
    refused: Option<String>,
    /// The protocols the request offers to switch to (its `Upgrade` header), if it does.
    offered: Option<Vec<u8>>,
    /// Whether the application took the connection over.
    accepted: bool,
    /// The `Upgrade` header the application answered with.
    upgrade: Option<Vec<u8>>,
    /// The file the application asked Apache to send (`X-Sendfile`).
    sendfile: Option<Vec<u8>>,
}

impl Default for HeadBuilder {
    fn default() -> HeadBuilder {
        HeadBuilder {
            head: ResponseHead {
                status: 200,
                content_length: None,
            },
            refused: None,
            offered: None,
            accepted: false,
            upgrade: None,
            sendfile: None,
        }
    }
}

impl HeadBuilder {
    /// A head for a request that offers to switch to `protocols` (its `Upgrade` header).
    pub(crate) fn offering(protocols: &[u8]) -> HeadBuilder {
        HeadBuilder {
            offered: Some(protocols.to_vec()),
            ..HeadBuilder::default()
        }
    }

    /// The protocols offered, unless the offer was withdrawn.
    pub(crate) fn offered(&self) -> Option<&[u8]> {
        self.offered.as_deref()
    }

    /// No upgrade is offered after all (the application predates them).
    pub(crate) fn withdraw_offer(&mut self) {
        self.offered = None;
    }

    /// The application takes the connection over: `false` if no upgrade is offered or it
    /// was taken already.
    pub(crate) fn accept_upgrade(&mut self) -> bool {
        let accepted = self.offered.is_some() && !self.accepted;
        self.accepted |= accepted;
        accepted
    }

    /// The protocol a 101 switches to (once its head was accepted).
    pub(crate) fn upgrade(&self) -> &[u8] {
        self.upgrade.as_deref().unwrap_or_default()
    }

    /// The file the application asked Apache to send as the body (`X-Sendfile`).
    pub(crate) fn sendfile(&self) -> Option<&[u8]> {
        self.sendfile.as_deref()
    }

    /// Sets the status; `false` if refused.
    pub(crate) fn set_status(&mut self, status: u32) -> bool {
        match self.keep(check_status(status, self.offered.is_some())) {
            Some(status) => {
                self.head.status = status;
                true
            }
            None => false,
        }
    }

    /// How to apply the header, if allowed (a `Content-Length` is remembered).
    pub(crate) fn header(&mut self, name: &[u8], value: &[u8]) -> Option<HeaderUse> {
        let use_ = self.keep(check_header(name, value))?;
        match use_ {
            HeaderUse::ContentLength(length) => self.head.content_length = Some(length),
            HeaderUse::Upgrade => self.upgrade = Some(value.to_vec()),
            HeaderUse::Sendfile => self.sendfile = Some(value.to_vec()),
            _ => {}
        }
        Some(use_)
    }

    /// The head, or the first thing in it refused.
    pub(crate) fn finish(&self) -> Result<ResponseHead, String> {
        if let Some(problem) = &self.refused {
            return Err(problem.clone());
        }
        if self.head.status == SWITCHING_PROTOCOLS {
            self.check_switch()?;
        }
        Ok(self.head)
    }

    /// A 101 must have taken the connection and name a protocol the client offered.
    fn check_switch(&self) -> Result<(), String> {
        let offered = self.offered.as_deref().unwrap_or_default();
        if !self.accepted {
            return Err(
                "status 101 without taking the connection over (accept_upgrade) first".to_owned(),
            );
        }
        match self.upgrade.as_deref() {
            Some(protocol) if super::upgrade::is_offered(offered, protocol) => Ok(()),
            Some(protocol) => Err(format!(
                "status 101 switches to {:?}, which the client did not offer (it offered {:?})",
                String::from_utf8_lossy(protocol),
                String::from_utf8_lossy(offered)
            )),
            None => Err("status 101 without an Upgrade header naming the protocol".to_owned()),
        }
    }

    fn keep<T>(&mut self, checked: Result<T, String>) -> Option<T> {
        checked
            .map_err(|problem| self.refused.get_or_insert(problem))
            .ok()
    }
}

fn is_token_byte(b: u8) -> bool {
    TOKEN_BYTES[usize::from(b)]
}

/// RFC 9110's `tchar`s, looked up rather than searched: every header of every response is
/// checked byte by byte.
const TOKEN_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let byte = b as u8;
        table[b] = byte.is_ascii_alphanumeric();
        b += 1;
    }
    let symbols = b"!#$%&'*+-.^_`|~";
    let mut i = 0;
    while i < symbols.len() {
        table[symbols[i] as usize] = true;
        i += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailers_carry_no_field_that_belongs_in_the_head() {
        assert!(check_trailer(b"grpc-status", b"0").is_ok());
        assert!(check_trailer(b"Server-Timing", b"db;dur=53").is_ok());
        assert!(check_trailer(b"Content-Length", b"3").is_err());
        assert!(check_trailer(b"transfer-encoding", b"chunked").is_err());
        assert!(check_trailer(b"grpc-message", b"a\r\nb").is_err());
        assert!(check_trailer(b"bad name", b"x").is_err());
    }

    #[test]
    fn statuses_outside_the_final_range_are_refused() {
        assert_eq!(check_status(200, false), Ok(200));
        assert_eq!(check_status(599, false), Ok(599));
        for bad in [0, 99, 101, 199, 600, 70000] {
            assert!(check_status(bad, false).is_err(), "{bad}");
        }
        assert_eq!(check_status(101, true), Ok(101));
        assert!(check_status(100, true).is_err());
    }

    #[test]
    fn a_switch_needs_the_connection_and_an_offered_protocol() {
        let switch = |accept: bool, upgrade: Option<&[u8]>| {
            let mut head = HeadBuilder::offering(b"websocket");
            assert!(head.set_status(101));
            if accept {
                assert!(head.accept_upgrade());
                assert!(!head.accept_upgrade(), "taken once");
            }
            if let Some(protocol) = upgrade {
                assert_eq!(head.header(b"Upgrade", protocol), Some(HeaderUse::Upgrade));
            }
            head.finish()
        };
        assert!(switch(true, Some(b"websocket")).is_ok());
        assert!(
            switch(false, Some(b"websocket"))
                .unwrap_err()
                .contains("accept_upgrade")
        );
        assert!(
            switch(true, Some(b"h2c"))
                .unwrap_err()
                .contains("did not offer")
        );
        assert!(switch(true, None).unwrap_err().contains("Upgrade header"));
        let mut withdrawn = HeadBuilder::offering(b"websocket");
        withdrawn.withdraw_offer();
        assert!(!withdrawn.set_status(101));
        assert!(!withdrawn.accept_upgrade());
    }

    #[test]
    fn header_injection_is_refused() {
        assert!(check_header(b"X-A", b"ok\r\nSet-Cookie: evil").is_err());
        assert!(check_header(b"X-A", b"nul\0").is_err());
        assert!(check_header(b"X-A\r\n", b"v").is_err());
        assert!(check_header(b"Bad Name", b"v").is_err());
        assert!(check_header(b"", b"v").is_err());
        assert_eq!(
            check_header(b"X-A", b"tab\tand \xc3\xa9"),
            Ok(HeaderUse::Plain)
        );
    }

    #[test]
    fn the_first_refusal_is_kept() {
        let mut head = HeadBuilder::default();
        assert!(head.set_status(201));
        assert_eq!(head.header(b"X-A", b"ok"), Some(HeaderUse::Plain));
        assert_eq!(
            head.header(b"Content-Length", b"5"),
            Some(HeaderUse::ContentLength(5))
        );
        assert_eq!(
            head.finish(),
            Ok(ResponseHead {
                status: 201,
                content_length: Some(5)
            })
        );
        assert_eq!(head.header(b"X-B", b"a\nb"), None);
        assert!(!head.set_status(42));
        assert!(head.finish().unwrap_err().contains("X-B"));
    }

    #[test]
    fn special_headers_are_recognised() {
        assert_eq!(
            check_header(b"content-type", b"text/plain"),
            Ok(HeaderUse::ContentType)
        );
        assert_eq!(
            check_header(b"Content-Length", b" 12"),
            Ok(HeaderUse::ContentLength(12))
        );
        assert!(check_header(b"Content-Length", b"twelve").is_err());
        assert_eq!(
            check_header(b"Transfer-Encoding", b"chunked"),
            Ok(HeaderUse::HopByHop)
        );
    }
}
