//! A response on its way from a daemon to an Apache child. It is pumped by a worker while its
//! body produces; when the body has nothing yet, or the Apache child reads too slowly to take
//! more, it waits on the event loop instead of holding the worker.

use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rustapp_daemon_protocol::Frame;

use super::clock::AppClock;
use crate::daemon::connection::Connection;
use crate::daemon::os::writable_within;
use crate::daemon::request_state::DaemonRequest;
use crate::host::{BodyPiece, ResponseBody};

/// Output queued for the Apache child beyond which the body is not asked for more: what one
/// slow reader costs a daemon in memory, at most (plus one body piece).
pub(super) const HIGH_WATER: usize = 256 * 1024;

/// How long a worker waits for an Apache child to take queued output before it leaves the
/// response on the event loop.
const WRITABLE_SOON: Duration = Duration::from_millis(2);

pub(super) struct Stream {
    // Dropped before `request`: closing the body may still call the host.
    body: ResponseBody<'static>,
    request: Box<DaemonRequest>,
    /// How long the body may produce nothing (the URL's stream-idle-timeout, else the group's
    /// request-timeout).
    idle_limit: Duration,
    /// When the body last produced something.
    last_progress: Instant,
    /// The body has ended: only queued output is left to write.
    finished: bool,
    /// While it waits: the body also waits for request body the client has not sent yet, so
    /// the Apache child's answer on the connection is a reason to go on (not a `Cancel`).
    waits_for_input: bool,
}

// SAFETY: a body moves to another thread only when its application accepts that (ABI 1.2,
// `may_move_between_threads`); `Stream::new` refuses any other. The request state moves with
// it and is used by one thread at a time.
unsafe impl Send for Stream {}

/// Where a pumped stream stands.
pub(super) enum Pumped {
    /// The response is complete and written: the connection is free.
    Done(Connection),
    /// The connection failed (it is closed with the stream).
    Broken,
    /// The body has nothing yet: it goes on once this descriptor is readable.
    WaitBody(Stream, RawFd),
    /// The Apache child has not taken what is queued: it goes on once the socket is writable.
    WaitWritable(Stream),
}

impl Stream {
    /// A stream for `body`, when it may wait away from its thread; `Err` gives it back
    /// otherwise.
    pub(super) fn new(
        request: Box<DaemonRequest>,
        body: ResponseBody<'static>,
        idle_limit: Duration,
    ) -> Result<Stream, (Box<DaemonRequest>, ResponseBody<'static>)> {
        if !body.may_move_between_threads() {
            return Err((request, body));
        }
        Ok(Stream {
            body,
            request,
            idle_limit,
            last_progress: Instant::now(),
            finished: false,
            waits_for_input: false,
        })
    }

    /// Pulls the body and queues its frames until it ends, waits, or too much is queued.
    pub(super) fn pump(mut self, clock: &AppClock<'_>, max_chunk: usize) -> Pumped {
        loop {
            if self.finished {
                return self.drain();
            }
            if self.request.connection().queued() > HIGH_WATER {
                let flushed = self.request.connection().flush_without_blocking();
                match flushed {
                    Err(_) => return Pumped::Broken,
                    // An Apache child that keeps up takes it in moments: waiting that long here
                    // costs less than a trip through the event loop; a slow one is left there.
                    Ok(false) if !self.writable_soon() => return Pumped::WaitWritable(self),
                    Ok(_) => {}
                }
                continue;
            }
            let ready = {
                let _in_app = clock.enter(self.idle_limit);
                pull(&mut self.body, &self.request, max_chunk)
            };
            match ready {
                Err(_) => return Pumped::Broken,
                Ok(Pulled::Progress) => self.last_progress = Instant::now(),
                Ok(Pulled::Ended) => self.finished = true,
                Ok(Pulled::Pending(fd, for_input)) => {
                    self.waits_for_input = for_input;
                    let flushed = self.request.connection().flush_without_blocking();
                    return match flushed {
                        Err(_) => Pumped::Broken,
                        Ok(_) => Pumped::WaitBody(self, fd),
                    };
                }
            }
        }
    }

    /// Whether the connection takes more within a moment.
    fn writable_soon(&self) -> bool {
        writable_within(self.connection_fd(), WRITABLE_SOON)
    }

    /// Writes what is queued without waiting; then, for an ended body, the connection is free.
    pub(super) fn drain(self) -> Pumped {
        let flushed = self.request.connection().flush_without_blocking();
        match flushed {
            Err(_) => Pumped::Broken,
            Ok(false) => Pumped::WaitWritable(self),
            Ok(true) if self.finished => match self.into_connection() {
                Some(conn) => Pumped::Done(conn),
                None => Pumped::Broken,
            },
            Ok(true) => Pumped::WaitWritable(self),
        }
    }

    /// Writes what the connection takes now: whether all of it went.
    pub(super) fn flush_queued(&mut self) -> std::io::Result<bool> {
        self.request.connection().flush_without_blocking()
    }

    /// Whether the waiting body also waits for the Apache child's answer to a body read.
    pub(super) fn waits_for_input(&self) -> bool {
        self.waits_for_input
    }

    /// Whether the body has ended (only output is left to write).
    pub(super) fn is_finished(&self) -> bool {
        self.finished
    }

    pub(super) fn queued(&self) -> usize {
        self.request.connection().queued()
    }

    /// How long the body has produced nothing, if past its limit.
    pub(super) fn idle_past_limit(&self, now: Instant) -> Option<Duration> {
        let idle = now.saturating_duration_since(self.last_progress);
        (idle > self.idle_limit).then_some(self.idle_limit)
    }

    /// The connection's descriptor, for the event loop.
    pub(super) fn connection_fd(&self) -> RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&self.request.connection().stream)
    }

    /// Ends the response with `last` (a clean end or an abort) and closes the body; the
    /// connection, if all was written at once.
    pub(super) fn end_with(self, last: &[Frame]) -> Option<Connection> {
        let Stream { body, request, .. } = self;
        drop(body); // runs the application's clean-up
        let mut queue = request.connection();
        for frame in last {
            queue.queue_without_blocking(frame);
        }
        drop(queue);
        let in_step = request.leaves_connection_in_step();
        let mut conn = request.into_connection();
        conn.flush_without_blocking()
            .ok()?
            .then_some(conn)
            .filter(|_| in_step)
    }

    /// Drops the response: its client went away.
    pub(super) fn cancel(self) {
        let Stream { body, request, .. } = self;
        drop(body);
        drop(request);
    }

    /// The connection of a response that ended and was written, if it can serve again.
    pub(super) fn into_connection(self) -> Option<Connection> {
        let Stream { body, request, .. } = self;
        drop(body);
        let in_step = request.leaves_connection_in_step();
        Some(request.into_connection()).filter(|_| in_step)
    }
}

/// What one pull of the body gave.
enum Pulled {
    Progress,
    Ended,
    /// Waits on this descriptor, and (when true) for request body from the Apache child.
    Pending(RawFd, bool),
}

/// Asks the body for one piece and queues its frame.
fn pull(
    body: &mut ResponseBody<'static>,
    request: &DaemonRequest,
    max_chunk: usize,
) -> std::io::Result<Pulled> {
    let piece = body.next();
    let mut conn = request.connection();
    let frame = match piece {
        BodyPiece::Data(data) => {
            for piece in data.chunks(max_chunk) {
                conn.queue_response_body_without_blocking(piece, WRITABLE_SOON)?;
            }
            return Ok(Pulled::Progress);
        }
        BodyPiece::Flush => {
            conn.queue_without_blocking(&Frame::Flush);
            conn.flush_without_blocking()?;
            return Ok(Pulled::Progress);
        }
        BodyPiece::Pending(fd) => return Ok(Pulled::Pending(fd, false)),
        BodyPiece::PendingInput(fd) => return Ok(Pulled::Pending(fd, true)),
        BodyPiece::End => {
            if let Some(trailers) = request.take_trailers() {
                conn.queue_without_blocking(&trailers);
            }
            Frame::ResponseEnd
        }
        BodyPiece::Failed => Frame::ResponseAbort {
            reason: Bytes::from_static(b"the application failed while producing its body"),
        },
    };
    conn.queue_without_blocking(&frame);
    Ok(Pulled::Ended)
}
