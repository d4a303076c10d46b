//! Waiting for a descriptor while watching the client: what the response pipeline does while
//! a body has nothing to send yet.

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

/// Waits up to `limit` for `fd` to be readable, or for `client` (a socket) to hang up.
pub(crate) fn wait_readable(fd: RawFd, client: Option<RawFd>, limit: Duration) -> Woke {
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
    ];
    let millis = i32::try_from(limit.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: two pollfds in a live array; a negative descriptor is ignored by poll.
    let ready = unsafe { libc::poll(fds.as_mut_ptr(), 2, millis) };
    if ready <= 0 {
        return Woke::TimedOut; // also EINTR: the caller goes round again
    }
    if fds[1].revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0 {
        return Woke::ClientGone;
    }
    if fds[0].revents != 0 {
        return Woke::Ready;
    }
    Woke::TimedOut
}
