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
    /// Passed through as is.
    Plain,
}

/// A status an application may answer with: 200–599 (informational codes are Apache's).
pub(crate) fn check_status(status: u32) -> Result<u16, String> {
    match u16::try_from(status) {
        Ok(s) if (200..=599).contains(&s) => Ok(s),
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
    } else if [
        "connection",
        "keep-alive",
        "transfer-encoding",
        "upgrade",
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
}

impl Default for HeadBuilder {
    fn default() -> HeadBuilder {
        HeadBuilder {
            head: ResponseHead {
                status: 200,
                content_length: None,
            },
            refused: None,
        }
    }
}

impl HeadBuilder {
    /// Sets the status; `false` if refused.
    pub(crate) fn set_status(&mut self, status: u32) -> bool {
        match self.keep(check_status(status)) {
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
        if let HeaderUse::ContentLength(length) = use_ {
            self.head.content_length = Some(length);
        }
        Some(use_)
    }

    /// The head, or the first thing in it refused.
    pub(crate) fn finish(&self) -> Result<ResponseHead, String> {
        match &self.refused {
            Some(problem) => Err(problem.clone()),
            None => Ok(self.head),
        }
    }

    fn keep<T>(&mut self, checked: Result<T, String>) -> Option<T> {
        checked
            .map_err(|problem| self.refused.get_or_insert(problem))
            .ok()
    }
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_outside_the_final_range_are_refused() {
        assert_eq!(check_status(200), Ok(200));
        assert_eq!(check_status(599), Ok(599));
        for bad in [0, 99, 101, 199, 600, 70000] {
            assert!(check_status(bad).is_err(), "{bad}");
        }
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
