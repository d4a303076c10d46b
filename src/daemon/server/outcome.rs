//! What a worker gives back to the event loop after its turn.

use std::os::fd::RawFd;

use super::stream::{Pumped, Stream};
use crate::daemon::connection::Connection;

/// What a worker gives back.
pub(super) enum Returned {
    /// Free for the next request.
    Idle(Connection),
    /// A response waits (counted as running until it ends).
    Waiting(Stream, Wait),
    /// Closed.
    Closed,
    /// Switched to another protocol (a 101): the Apache child relays the application's socket
    /// until it closes this connection (counted as running, and as a tunnel, until then).
    Tunnel(Connection),
}

/// What a worker leaves to the event loop: the outcomes that wait (a worker keeps idle
/// connections itself).
pub(super) enum Handover {
    Waiting(Stream, Wait),
    Tunnel(Connection),
}

/// What a waiting response waits for.
pub(super) enum Wait {
    /// Its body's descriptor to be readable.
    Body(RawFd),
    /// Its connection to take what is queued.
    Writable,
}

impl From<Pumped> for Returned {
    fn from(pumped: Pumped) -> Returned {
        match pumped {
            Pumped::Done(conn) => Returned::Idle(conn),
            Pumped::Broken => Returned::Closed,
            Pumped::WaitBody(stream, fd) => Returned::Waiting(stream, Wait::Body(fd)),
            Pumped::WaitWritable(stream) => Returned::Waiting(stream, Wait::Writable),
        }
    }
}
