//! A worker thread: takes whichever connection the event loop found ready (or a waiting
//! response that can go on), serves one turn of it, and gives it back.

use std::io;
use std::os::fd::RawFd;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::time::{Duration, Instant};

use mio::Waker;
use rustapp_daemon_protocol::{Frame, PROTOCOL_VERSION};

use super::ServeOptions;
use super::answering::{answer_user_query, serve_request};
use super::apps::DaemonApps;
use super::recycle::Activity;
use super::stream::{Pumped, Stream};
use crate::daemon::connection::Connection;
use crate::daemon::os::peer_uid;

/// What the event loop and its workers share.
pub(super) struct Shared {
    pub(super) apps: &'static DaemonApps,
    pub(super) options: ServeOptions,
    pub(super) activity: Activity,
    /// When serving began; the activity's times count from it.
    pub(super) epoch: Instant,
    /// Work for the workers, from the event loop.
    pub(super) ready: Mutex<Receiver<Work>>,
    /// What a worker is done with, back to the event loop (which `waker` wakes).
    pub(super) done: Sender<Returned>,
    pub(super) waker: Waker,
}

impl Shared {
    /// Milliseconds since serving began.
    pub(super) fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }
}

/// Something for a worker to do.
pub(super) enum Work {
    /// A connection with something to read: a greeting, a request or a user query.
    Serve(Connection),
    /// A waiting response that can go on.
    Resume(Stream),
}

/// What a worker gives back.
pub(super) enum Returned {
    /// Free for the next request.
    Idle(Connection),
    /// A response waits (counted as running until it ends).
    Waiting(Stream, Wait),
    /// Closed.
    Closed,
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

/// A worker's record of running application code: while it does, when that call passes its
/// limit. A call that has not returned a while after (its thread cannot be freed) makes the
/// process retire (see `recycle::stuck_call`).
pub(super) struct AppClock<'s> {
    deadline_ms: &'s AtomicU64,
    limit_ms: &'s AtomicU64,
    shared: &'s Shared,
}

/// Marks the end of a call into application code when dropped.
pub(super) struct InApp<'c>(&'c AtomicU64);

impl Drop for InApp<'_> {
    fn drop(&mut self) {
        self.0.store(0, Ordering::Release);
    }
}

impl AppClock<'_> {
    /// A call into application code that should not take longer than `limit` begins.
    pub(super) fn enter(&self, limit: Duration) -> InApp<'_> {
        let deadline = self.shared.now_ms() + limit.as_millis() as u64 + 1;
        self.limit_ms
            .store(limit.as_millis() as u64, Ordering::Release);
        self.deadline_ms.store(deadline, Ordering::Release);
        InApp(self.deadline_ms)
    }
}

/// Worker `index`'s loop, until the event loop goes away.
pub(super) fn work(index: usize, shared: &Shared) {
    let activity = &shared.activity;
    let clock = AppClock {
        deadline_ms: &activity.app_deadline_ms[index],
        limit_ms: &activity.app_limit_ms[index],
        shared,
    };
    loop {
        let next = shared.ready.lock().map(|r| r.recv());
        let Ok(Ok(work)) = next else { return };
        let returned = match work {
            Work::Serve(conn) => {
                let (returned, served) = serve_turn(conn, shared, &clock);
                if served {
                    activity.served.fetch_add(1, Ordering::AcqRel);
                    activity
                        .last_request_ms
                        .store(shared.now_ms(), Ordering::Release);
                }
                returned
            }
            Work::Resume(stream) => {
                let max_chunk = shared.options.limits.max_body_chunk as usize;
                stream.pump(&clock, max_chunk).into()
            }
        };
        if shared.done.send(returned).is_err() {
            return;
        }
        // The event loop takes it from here (and may be waiting for the running count).
        let _ = shared.waker.wake();
    }
}

/// One turn of a connection: its greeting if new, then one request or user query. Whether a
/// request was answered comes with it.
fn serve_turn(mut conn: Connection, shared: &Shared, clock: &AppClock<'_>) -> (Returned, bool) {
    let (apps, options) = (shared.apps, &shared.options);
    let turn = (|| {
        conn.stream.set_read_timeout(Some(options.socket_timeout))?;
        if !conn.greeted && !greet(&mut conn, options)? {
            return Ok(None);
        }
        // An Apache child opens a connection to send a request at once: it is read in this
        // same turn, so the time the connection waited for this worker counts for
        // queue-timeout. (A greeted peer that sends nothing holds this worker up to
        // socket-timeout; only Apache's user with this Apache's token gets this far.)
        conn.read_frame()
    })();
    match turn {
        Ok(None) => (Returned::Closed, false),
        Ok(Some(Frame::RequestHead(head))) => {
            (serve_request(conn, head, apps, options, clock), true)
        }
        Ok(Some(Frame::UserQuery(query))) => match answer_user_query(conn, *query, apps, options) {
            Ok(conn) => (Returned::Idle(conn), true),
            Err(e) => closing(&e),
        },
        Ok(Some(other)) => closing(&protocol_error(&format!(
            "expected a request, got {other:?}"
        ))),
        Err(e) => closing(&e),
    }
}

fn closing(error: &io::Error) -> (Returned, bool) {
    log::info!("daemon: closing a connection: {error}");
    (Returned::Closed, false)
}

pub(super) fn protocol_error(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

/// Checks that the peer is this Apache: its user, then the secret token. `false` when the
/// connection is refused.
fn greet(conn: &mut Connection, options: &ServeOptions) -> io::Result<bool> {
    let uid = peer_uid(&conn.stream)?;
    if uid != options.allowed_uid && uid != 0 {
        log::warn!("daemon: refused a connection from uid {uid}: only Apache's user may connect");
        return Ok(false);
    }
    match conn.read_frame()? {
        Some(Frame::Hello { version, token })
            if version == PROTOCOL_VERSION && token == options.token =>
        {
            conn.send(&Frame::Welcome {
                pid: std::process::id(),
            })?;
            conn.greeted = true;
            Ok(true)
        }
        Some(Frame::Hello { version, .. }) if version != PROTOCOL_VERSION => Err(protocol_error(
            &format!("the Apache child speaks protocol {version}, this daemon {PROTOCOL_VERSION}"),
        )),
        _ => {
            log::warn!("daemon: refused a connection that did not present this Apache's token");
            Ok(false)
        }
    }
}
