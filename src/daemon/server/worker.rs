//! A worker thread: takes whichever connection the event loop found ready (or a waiting
//! response that can go on), serves one turn of it, and gives it back.

use std::io;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, Sender};
use std::time::Instant;

use mio::Waker;
use rustapp_daemon_protocol::{Frame, PROTOCOL_VERSION};

use super::ServeOptions;
use super::answering::{answer_user_query, failed, protocol_error, serve_request};
use super::apps::DaemonApps;
use super::clock::AppClock;
use super::outcome::Returned;
use super::recycle::Activity;
use super::stream::Stream;
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

/// Worker `index`'s loop, until the event loop goes away.
pub(super) fn work(index: usize, shared: &Shared) {
    let activity = &shared.activity;
    let clock = AppClock {
        deadline_ms: &activity.app_deadline_ms[index],
        limit_ms: &activity.app_limit_ms[index],
        epoch: shared.epoch,
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
    let (apps, options, activity) = (shared.apps, &shared.options, &shared.activity);
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
            (serve_request(conn, head, None, apps, options, clock), true)
        }
        Ok(Some(Frame::UpgradableRequest { head, protocols })) => {
            // A slot for the tunnel, held while the application answers: beyond the
            // group's max-tunnels, the request is refused before it runs.
            let reserved =
                activity
                    .tunnels
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                        (n < options.max_tunnels).then_some(n + 1)
                    });
            if reserved.is_err() {
                let refusal = failed(
                    503,
                    &format!(
                        "this daemon process has {} upgraded connections open already, its group's max-tunnels; raise max-tunnels= on RustAppDaemonProcess, or processes=",
                        options.max_tunnels
                    ),
                );
                return match conn.send(&refusal) {
                    Ok(()) => (Returned::Idle(conn), true),
                    Err(e) => closing(&e),
                };
            }
            let returned = serve_request(conn, head, Some(protocols), apps, options, clock);
            if !matches!(returned, Returned::Tunnel(..)) {
                activity.tunnels.fetch_sub(1, Ordering::AcqRel);
            }
            (returned, true)
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
