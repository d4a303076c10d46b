//! Protocol upgrades (ABI 1.3): which requests offer one, and the socket pair an application's
//! accepted upgrade runs over. The host keeps one end and relays it to the client; the
//! application owns the other.

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;

/// The protocols a request offers to switch to, when its connection can be handed over: a
/// `GET` with an `Upgrade` header, over HTTP/1.1 with `Connection: upgrade` and no body, or
/// as mod_http2 presents an RFC 8441 extended `CONNECT`: a `GET` with `Upgrade: websocket`,
/// protocol `HTTP/2.0`, no `Connection` header (HTTP/2 has none) and a chunked "body", which
/// is the stream the new protocol runs over. HTTP/1.0 has no upgrades.
pub(crate) fn offered<'a>(
    method: &[u8],
    protocol: &[u8],
    upgrade: &'a [u8],
    connection: Option<&[u8]>,
    has_body: bool,
) -> Option<&'a [u8]> {
    if upgrade.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    let asks = match protocol {
        b"HTTP/1.1" => {
            !has_body
                && connection.is_some_and(|c| tokens(c).any(|t| t.eq_ignore_ascii_case(b"upgrade")))
        }
        b"HTTP/2.0" => true,
        _ => false,
    };
    (method == b"GET" && asks).then_some(upgrade)
}

/// Whether `answered` (a 101's `Upgrade` value) is one of the protocols in `offered`.
pub(crate) fn is_offered(offered: &[u8], answered: &[u8]) -> bool {
    let answered = answered.trim_ascii();
    tokens(offered).any(|t| t.eq_ignore_ascii_case(answered))
}

/// The comma-separated tokens of a header value.
fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
}

/// A connected pair of stream sockets: (host's end, application's end). The host's end does
/// not block; the application's does, as a fresh socket would.
pub(crate) fn socket_pair() -> io::Result<(UnixStream, OwnedFd)> {
    let (host, app) = UnixStream::pair()?;
    host.set_nonblocking(true)?;
    Ok((host, OwnedFd::from(app)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_bodyless_get_asking_for_an_upgrade_offers_one() {
        let ws = b"websocket".as_slice();
        let up = Some(b"keep-alive, Upgrade".as_slice());
        assert_eq!(offered(b"GET", b"HTTP/1.1", ws, up, false), Some(ws));
        assert_eq!(offered(b"GET", b"HTTP/2.0", ws, up, false), Some(ws));
        assert_eq!(offered(b"GET", b"HTTP/2.0", ws, None, true), Some(ws));
        assert_eq!(offered(b"POST", b"HTTP/1.1", ws, up, false), None);
        assert_eq!(offered(b"GET", b"HTTP/1.0", ws, up, false), None);
        assert_eq!(offered(b"GET", b"HTTP/1.1", ws, up, true), None);
        assert_eq!(offered(b"GET", b"HTTP/1.1", b" ", up, false), None);
        assert_eq!(
            offered(b"GET", b"HTTP/1.1", ws, Some(b"keep-alive"), false),
            None
        );
        assert_eq!(offered(b"GET", b"HTTP/1.1", ws, None, false), None);
        assert_eq!(
            offered(b"GET", b"HTTP/1.1", ws, Some(b"upgraded"), false),
            None
        );
    }

    #[test]
    fn an_answer_must_name_an_offered_protocol() {
        assert!(is_offered(b"websocket", b"WebSocket"));
        assert!(is_offered(b"h2c, websocket", b" websocket "));
        assert!(!is_offered(b"websocket", b"h2c"));
        assert!(!is_offered(b"websocket", b""));
    }
}
