//! The daemon's event loop: accepts connections, keeps idle ones on the poller, hands ready
//! ones to the workers, and decides when the process stops serving.

use std::collections::HashMap;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use rustapp_daemon_protocol::Frame;

use super::apps::DaemonApps;
use super::recycle::{Activity, overdue_request, reason_to_retire};
use super::worker::{Shared, work};
use super::{Retired, ServeOptions};
use crate::daemon::connection::Connection;
use crate::daemon::os::STOP_REQUESTED;

const LISTENER: Token = Token(0);
const WAKE: Token = Token(1);
const FIRST_CONNECTION: usize = 2;

/// Serves connections from `listener` until the process should retire (or the listener fails).
/// Blocks the calling thread, which becomes the event loop.
pub(crate) fn serve(
    listener: UnixListener,
    apps: Arc<DaemonApps>,
    options: ServeOptions,
) -> io::Result<Retired> {
    let mut poll = Poll::new()?;
    listener.set_nonblocking(true)?;
    let listener_fd = listener.as_raw_fd();
    poll.registry()
        .register(&mut SourceFd(&listener_fd), LISTENER, Interest::READABLE)?;

    let threads = options.threads.max(1);
    let (to_workers, ready) = mpsc::channel::<Connection>();
    let (done, from_workers) = mpsc::channel::<Connection>();
    let shared = Arc::new(Shared {
        apps,
        activity: Activity {
            busy_since_ms: (0..threads).map(|_| AtomicU64::new(0)).collect(),
            ..Activity::default()
        },
        options,
        epoch: Instant::now(),
        ready: Mutex::new(ready),
        done,
        waker: Waker::new(poll.registry(), WAKE)?,
    });
    for n in 0..threads {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name(format!("rustapp-daemon-{n}"))
            .spawn(move || work(n, &shared))?;
    }
    let (options, activity) = (&shared.options, &shared.activity);
    let hand_over = |mut conn: Connection| {
        conn.ready_at = Some(Instant::now());
        activity.outstanding.fetch_add(1, Ordering::AcqRel);
        let _ = to_workers.send(conn);
    };

    let mut idle: HashMap<Token, Connection> = HashMap::new();
    let mut next_token = FIRST_CONNECTION;
    let mut events = Events::with_capacity(256);
    // Set once the process starts retiring: why, and since when.
    let mut retiring: Option<(String, Instant)> = None;
    loop {
        if let Err(e) = poll.poll(&mut events, Some(Duration::from_secs(1))) {
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        for event in &events {
            match event.token() {
                LISTENER if retiring.is_none() => loop {
                    match listener.accept() {
                        Ok((stream, _)) => hand_over(Connection::new(stream, options.limits)),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => {
                            log::error!("daemon: accepting a connection failed: {e}");
                            break;
                        }
                    }
                },
                LISTENER | WAKE => {}
                token => {
                    if let Some(conn) = idle.remove(&token) {
                        let fd = conn.stream.as_raw_fd();
                        let _ = poll.registry().deregister(&mut SourceFd(&fd));
                        hand_over(conn);
                    }
                }
            }
        }
        // Connections the workers are done with: idle until their next request.
        for mut conn in from_workers.try_iter() {
            activity.outstanding.fetch_sub(1, Ordering::AcqRel);
            if retiring.is_some() {
                say_goodbye(conn);
            } else if conn.has_buffered_input() {
                hand_over(conn);
            } else {
                let token = Token(next_token);
                next_token += 1;
                let fd = conn.stream.as_raw_fd();
                if poll
                    .registry()
                    .register(&mut SourceFd(&fd), token, Interest::READABLE)
                    .is_ok()
                {
                    idle.insert(token, conn);
                }
            }
        }
        if let Some(stuck) = overdue_request(activity, options, shared.epoch) {
            // Its Apache child has answered 504 already; the thread cannot be stopped from
            // outside, so the process ends and its supervisor starts another.
            return Err(io::Error::other(format!(
                "a request ran for {} s, past its request-timeout of {} s",
                stuck.as_secs(),
                options.request_timeout.as_secs()
            )));
        }
        match &retiring {
            None => {
                if let Some(reason) =
                    reason_to_retire(&options.recycle, activity, &shared.apps, shared.epoch)
                {
                    log::info!("daemon process {} retires: {reason}", std::process::id());
                    let _ = poll.registry().deregister(&mut SourceFd(&listener_fd));
                    for (_, conn) in idle.drain() {
                        say_goodbye(conn);
                    }
                    retiring = Some((reason, Instant::now()));
                }
            }
            Some((reason, since)) => {
                let running = activity.outstanding.load(Ordering::Acquire);
                if running == 0 {
                    return Ok(Retired {
                        reason: reason.clone(),
                    });
                }
                let limit = if STOP_REQUESTED.load(Ordering::Acquire) {
                    options.recycle.shutdown_timeout
                } else {
                    options.recycle.graceful_timeout
                };
                if since.elapsed() > limit {
                    return Ok(Retired {
                        reason: format!(
                            "{reason}; {running} requests still running at its graceful-timeout were cut off"
                        ),
                    });
                }
            }
        }
    }
}

/// Closes an idle connection, telling the Apache child that nothing sent on it will be read.
fn say_goodbye(mut conn: Connection) {
    let _ = conn.stream.set_write_timeout(Some(Duration::from_secs(1)));
    let _ = conn.send(&Frame::Goodbye);
}
