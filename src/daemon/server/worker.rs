//! A worker thread: takes whichever connection the event loop found ready, serves one turn of
//! it (the greeting and one request or user query), and gives it back.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use mio::Waker;
use rustapp_daemon_protocol::{Frame, PROTOCOL_VERSION};

use super::ServeOptions;
use super::answering::{answer_user_query, serve_request};
use super::apps::DaemonApps;
use super::recycle::Activity;
use crate::daemon::connection::Connection;
use crate::daemon::os::peer_uid;

/// What the event loop and its workers share.
pub(super) struct Shared {
    pub(super) apps: Arc<DaemonApps>,
    pub(super) options: ServeOptions,
    pub(super) activity: Activity,
    /// When serving began; the activity's times count from it.
    pub(super) epoch: Instant,
    /// Connections with something to read, from the event loop.
    pub(super) ready: Mutex<Receiver<Connection>>,
    /// Connections a worker is done with, back to the event loop (which `waker` wakes).
    pub(super) done: Sender<Connection>,
    pub(super) waker: Waker,
}

impl Shared {
    /// Milliseconds since serving began.
    pub(super) fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }
}

/// Worker `index`'s loop, until the event loop goes away.
pub(super) fn work(index: usize, shared: &Shared) {
    let activity = &shared.activity;
    loop {
        let next = shared.ready.lock().map(|r| r.recv());
        let Ok(Ok(mut conn)) = next else { return };
        let busy = &activity.busy_since_ms[index];
        busy.store(shared.now_ms() + 1, Ordering::Release);
        let outcome = serve_turn(&mut conn, &shared.apps, &shared.options);
        busy.store(0, Ordering::Release);
        if matches!(outcome, Ok(Turn::Served)) {
            activity.served.fetch_add(1, Ordering::AcqRel);
            activity
                .last_request_ms
                .store(shared.now_ms(), Ordering::Release);
        }
        match outcome {
            Ok(Turn::Again | Turn::Served) => {
                if shared.done.send(conn).is_err() || shared.waker.wake().is_err() {
                    return;
                }
            }
            Ok(Turn::Closed) => {
                activity.outstanding.fetch_sub(1, Ordering::AcqRel);
            }
            Err(e) => {
                activity.outstanding.fetch_sub(1, Ordering::AcqRel);
                log::info!("daemon: closing a connection: {e}");
            }
        }
        // The event loop may be waiting for this count to reach zero.
        let _ = shared.waker.wake();
    }
}

enum Turn {
    /// Keep the connection for the next request.
    Again,
    /// A request was answered; keep the connection.
    Served,
    Closed,
}

fn serve_turn(
    conn: &mut Connection,
    apps: &DaemonApps,
    options: &ServeOptions,
) -> io::Result<Turn> {
    conn.stream.set_read_timeout(Some(options.socket_timeout))?;
    if !conn.greeted {
        // An Apache child opens a connection to send a request at once: read it in this same
        // turn, so the time the connection waited for this worker counts for queue-timeout.
        // (A greeted peer that sends nothing holds this worker up to socket-timeout; only
        // Apache's user with this Apache's token gets this far.)
        if let Turn::Closed = greet(conn, options)? {
            return Ok(Turn::Closed);
        }
    }
    match conn.read_frame()? {
        None => Ok(Turn::Closed),
        Some(Frame::RequestHead(head)) => {
            serve_request(conn, head, apps, options).map(|()| Turn::Served)
        }
        Some(Frame::UserQuery(query)) => {
            answer_user_query(conn, *query, apps, options).map(|()| Turn::Served)
        }
        Some(other) => Err(protocol_error(&format!(
            "expected a request, got {other:?}"
        ))),
    }
}

pub(super) fn protocol_error(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

/// Checks that the peer is this Apache: its user, then the secret token.
fn greet(conn: &mut Connection, options: &ServeOptions) -> io::Result<Turn> {
    let uid = peer_uid(&conn.stream)?;
    if uid != options.allowed_uid && uid != 0 {
        log::warn!("daemon: refused a connection from uid {uid}: only Apache's user may connect");
        return Ok(Turn::Closed);
    }
    match conn.read_frame()? {
        Some(Frame::Hello { version, token })
            if version == PROTOCOL_VERSION && token == options.token =>
        {
            conn.send(&Frame::Welcome {
                pid: std::process::id(),
            })?;
            conn.greeted = true;
            Ok(Turn::Again)
        }
        Some(Frame::Hello { version, .. }) if version != PROTOCOL_VERSION => Err(protocol_error(
            &format!("the Apache child speaks protocol {version}, this daemon {PROTOCOL_VERSION}"),
        )),
        _ => {
            log::warn!("daemon: refused a connection that did not present this Apache's token");
            Ok(Turn::Closed)
        }
    }
}
