//! A worker thread: waits on the ready set for a connection with a request (or work the event
//! loop handed over), serves one turn of it, and puts it back to wait, itself; only a response
//! that must wait, or a switched connection, goes to the event loop.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Sender;
use std::time::Instant;

use mio::Waker;
use rustapp_daemon_protocol::{Frame, PROTOCOL_VERSION};

use super::ServeOptions;
use super::answering::{answer_user_query, failed, protocol_error, serve_request};
use super::apps::DaemonApps;
use super::clock::AppClock;
use super::outcome::{Handover, Returned};
use super::ready::{ReadySet, Work};
use super::recycle::Activity;
use crate::daemon::connection::Connection;
use crate::daemon::os::peer_uid;

/// What the event loop and its workers share.
pub(super) struct Shared {
    pub(super) apps: &'static DaemonApps,
    pub(super) options: ServeOptions,
    pub(super) activity: Activity,
    /// When serving began; the activity's times count from it.
    pub(super) epoch: Instant,
    /// What the workers wait on: idle connections, and work from the event loop.
    pub(super) ready: ReadySet,
    /// What only the event loop handles (waiting responses, tunnels), to it (`waker` wakes
    /// it).
    pub(super) done: Sender<Handover>,
    pub(super) waker: Waker,
}

impl Shared {
    /// Milliseconds since serving began.
    pub(super) fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// A connection is back to idle, or closed: it no longer counts as running. The event
    /// loop of a retiring process waits for that count to reach 0.
    pub(super) fn no_longer_running(&self) {
        if self.one_less_outstanding() == 0 && self.ready.is_closed() {
            let _ = self.waker.wake();
        }
    }

    /// A connection handed to a worker, or a response waiting, is done with; how many remain.
    pub(super) fn one_less_outstanding(&self) -> usize {
        let now = self.activity.outstanding.fetch_sub(1, Ordering::AcqRel) - 1;
        self.options.figures.outstanding(now);
        now
    }
}

/// Worker `index`'s loop, until the ready set stops.
pub(super) fn work(index: usize, shared: &Shared) {
    let activity = &shared.activity;
    let figures = &shared.options.figures;
    let clock = AppClock {
        deadline_ms: &activity.app_deadline_ms[index],
        limit_ms: &activity.app_limit_ms[index],
        epoch: shared.epoch,
        figures,
        worker: index,
    };
    while let Some(work) = shared.ready.next() {
        let returned = match work {
            Work::Serve(conn) => {
                let outstanding = activity.outstanding.fetch_add(1, Ordering::AcqRel) + 1;
                figures.outstanding(outstanding);
                let (returned, served) = serve_turn(conn, shared, &clock);
                if served {
                    figures.served(activity.served.fetch_add(1, Ordering::AcqRel) + 1);
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
        match returned {
            // In an elastic group, a saturated process hands its connections on as they come
            // free (see `ProcessFigures::others_have_room`), so that a process that joined
            // gets requests.
            Returned::Idle(conn)
                if shared.options.recycle.elastic_min.is_some() && figures.others_have_room() =>
            {
                say_goodbye(conn);
                shared.no_longer_running();
            }
            Returned::Idle(conn) => {
                if let Some(conn) = shared.ready.keep_idle(conn) {
                    say_goodbye(conn);
                }
                shared.no_longer_running();
            }
            Returned::Closed => shared.no_longer_running(),
            Returned::Waiting(stream, wait) => hand_over(shared, Handover::Waiting(stream, wait)),
            Returned::Tunnel(conn) => hand_over(shared, Handover::Tunnel(conn)),
        }
    }
}

/// Leaves `handover` to the event loop, and wakes it.
fn hand_over(shared: &Shared, handover: Handover) {
    // Fails only once the event loop has ended, when nothing is served any more.
    if shared.done.send(handover).is_ok() {
        let _ = shared.waker.wake();
    }
}

/// Closes an idle connection, telling the Apache child that nothing sent on it will be read.
pub(super) fn say_goodbye(mut conn: Connection) {
    let _ = conn
        .stream
        .set_write_timeout(Some(std::time::Duration::from_secs(1)));
    let _ = conn.send(&Frame::Goodbye);
}

/// One turn of a connection: its greeting if new, then one request or user query. Whether a
/// request was answered comes with it.
fn serve_turn(mut conn: Connection, shared: &Shared, clock: &AppClock<'_>) -> (Returned, bool) {
    let (apps, options, activity) = (shared.apps, &shared.options, &shared.activity);
    let turn = (|| {
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
