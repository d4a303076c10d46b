//! Waiting for a descriptor while watching the client: what the response pipeline does while
//! a body has nothing to send yet, and what a tunnel does between bytes.

use std::os::fd::RawFd;
use std::time::Duration;

/// What ended a wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Woke {
    /// The descriptor waited on is readable.
    Ready,
    /// The client's socket was shut down or failed.
    ClientGone,
    /// Neither, within the time given.
    TimedOut,
}

/// Waits up to `limit` for `fd` to be readable, or `input` (where the client's next bytes
/// show, when the caller waits for them too), or for `client` (a socket) to hang up.
pub(crate) fn wait_readable(
    fd: RawFd,
    client: Option<RawFd>,
    input: Option<RawFd>,
    limit: Duration,
) -> Woke {
    let mut fds = [
        libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: client.unwrap_or(-1),
            // Not POLLIN: a pipelined request or TLS record is no reason to stop.
            events: libc::POLLRDHUP,
            revents: 0,
        },
        libc::pollfd {
            fd: input.unwrap_or(-1),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    let millis = i32::try_from(limit.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: three pollfds in a live array; a negative descriptor is ignored by poll.
    let ready = unsafe { libc::poll(fds.as_mut_ptr(), 3, millis) };
    if ready <= 0 {
        return Woke::TimedOut; // also EINTR: the caller goes round again
    }
    if fds[1].revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0 {
        return Woke::ClientGone;
    }
    if fds[0].revents != 0 || fds[2].revents != 0 {
        return Woke::Ready;
    }
    Woke::TimedOut
}

/// Which sides of a tunnel `wait_tunnel` found ready.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TunnelReady {
    pub(crate) client: bool,
    pub(crate) peer_readable: bool,
    pub(crate) peer_writable: bool,
}

impl TunnelReady {
    pub(crate) fn nothing(&self) -> bool {
        *self == TunnelReady::default()
    }
}

/// Waits up to `limit` until the client may have sent more (`client`, when given), the peer
/// sent something or (if `peer_writable`) can take more. A hang-up or error shows as ready:
/// the next read or write finds out which.
pub(crate) fn wait_tunnel(
    client: Option<RawFd>,
    peer: RawFd,
    peer_writable: bool,
    limit: Duration,
) -> TunnelReady {
    let mut fds = [
        libc::pollfd {
            fd: client.unwrap_or(-1),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: peer,
            events: libc::POLLIN | if peer_writable { libc::POLLOUT } else { 0 },
            revents: 0,
        },
    ];
    let millis = i32::try_from(limit.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: two pollfds in a live array; a negative descriptor is ignored by poll.
    if unsafe { libc::poll(fds.as_mut_ptr(), 2, millis) } <= 0 {
        return TunnelReady::default(); // timed out, or interrupted: look again
    }
    let gone = libc::POLLHUP | libc::POLLERR;
    TunnelReady {
        client: fds[0].revents & (libc::POLLIN | gone) != 0,
        peer_readable: fds[1].revents & (libc::POLLIN | gone) != 0,
        peer_writable: fds[1].revents & (libc::POLLOUT | gone) != 0,
    }
}
