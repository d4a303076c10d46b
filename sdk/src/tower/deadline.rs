//! gRPC deadlines: a client's `grpc-timeout` bounds its call, as tonic's own server bounds it.
//! When it passes, the service's work is dropped and the call ends with DEADLINE_EXCEEDED
//! (status 4), before or after the response began.

use std::time::Duration;

use crate::response::HeaderText;
use crate::{HeaderBytes, Response};

/// How long a gRPC call may take, when its client said (`grpc-timeout: 250m`).
pub(super) fn grpc_timeout(request: &http::Request<super::Body>) -> Option<Duration> {
    // gRPC runs over HTTP/2 only.
    if request.version() != http::Version::HTTP_2 {
        return None;
    }
    let headers = request.headers();
    let is_grpc = headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/grpc"));
    if !is_grpc {
        return None;
    }
    parse_timeout(headers.get("grpc-timeout")?.as_bytes())
}

/// `TimeoutValue TimeoutUnit`: up to 8 digits, then H, M, S, m (milli), u (micro) or n.
fn parse_timeout(value: &[u8]) -> Option<Duration> {
    let (&unit, digits) = value.split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let amount: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(match unit {
        b'H' => Duration::from_secs(amount * 3600),
        b'M' => Duration::from_secs(amount * 60),
        b'S' => Duration::from_secs(amount),
        b'm' => Duration::from_millis(amount),
        b'u' => Duration::from_micros(amount),
        b'n' => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// The fields that end a call whose deadline passed.
pub(super) fn deadline_exceeded() -> Vec<(HeaderText, HeaderBytes)> {
    vec![
        (HeaderText::from("grpc-status"), HeaderBytes::from("4")),
        (
            HeaderText::from("grpc-message"),
            HeaderBytes::from("Deadline%20exceeded"),
        ),
    ]
}

/// A call whose deadline passed before the service answered: gRPC's "trailers-only" answer,
/// its status in the head.
pub(super) fn deadline_exceeded_response() -> Response {
    let mut response = Response::new(200).with_header("content-type", "application/grpc");
    for (name, value) in deadline_exceeded() {
        response = response.with_header(name, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse_in_every_unit() {
        assert_eq!(parse_timeout(b"250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_timeout(b"2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_timeout(b"1H"), Some(Duration::from_secs(3600)));
        assert_eq!(
            parse_timeout(b"99999999n"),
            Some(Duration::from_nanos(99_999_999))
        );
        assert_eq!(parse_timeout(b"123456789S"), None);
        assert_eq!(parse_timeout(b"m"), None);
        assert_eq!(parse_timeout(b"10x"), None);
        assert_eq!(parse_timeout(b"-1S"), None);
    }
}
