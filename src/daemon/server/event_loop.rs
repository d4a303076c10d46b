//! The daemon's event loop: accepts connections (into the ready set, where the workers wait
//! for their requests themselves), keeps waiting responses and tunnels on its poller, hands
//! whatever can go on to the workers, and decides when the process stops serving.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mio::event::Event;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Registry, Token, Waker};
use rustapp_daemon_protocol::Frame;

use super::apps::DaemonApps;
use super::outcome::{Handover, Wait};
use super::ready::{ReadySet, Work};
use super::recycle::{Activity, Watched, reason_to_retire, stuck_call};
use super::stream::{HIGH_WATER, Stream};
use super::worker::{Shared, say_goodbye, work};
use super::{Retired, ServeOptions};
use crate::daemon::connection::Connection;
use crate::daemon::os::{self, STOP_REQUESTED};
use crate::figures::EndReason;

const LISTENER: Token = Token(0);
const WAKE: Token = Token(1);

/// How often waiting responses are checked against their idle limits.
const IDLE_CHECK: Duration = Duration::from_millis(250);

/// Serves connections from `listener` until the process should retire (or the listener fails).
/// Blocks the calling thread, which becomes the event loop.
pub(crate) fn serve(
    listener: UnixListener,
    apps: &'static DaemonApps,
    options: ServeOptions,
) -> io::Result<Retired> {
    let mut workers = Vec::new();
    let retired = serve_until_retired(listener, apps, options, &mut workers)?;
    Ok(after_the_workers(retired, &workers))
}

/// Least time the workers get to finish once serving has ended, however long retiring took.
const LEAST_WORKER_WAIT: Duration = Duration::from_secs(1);

/// Waits, within the retirement's limit, for the workers to end (the ready set stopped as
/// serving ended): one may have taken a request at the very moment the last one ended, and
/// the applications may only be cleaned up once no worker runs their code. One still running
/// at the limit is cut off, and the clean-up is not run.
fn after_the_workers(mut retired: Retired, workers: &[std::thread::JoinHandle<()>]) -> Retired {
    let Some(until) = retired.clean_up_until else {
        return retired;
    };
    let deadline = until.max(Instant::now() + LEAST_WORKER_WAIT);
    let running = || workers.iter().filter(|w| !w.is_finished()).count();
    while running() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    if running() > 0 {
        retired.reason = format!(
            "{}; {} request(s) taken as it retired were still running at its limit and were cut off",
            retired.reason,
            running()
        );
        retired.clean_up_until = None;
    }
    retired
}

/// Serves until the process retires (or fails); the worker threads' handles go to `workers`.
fn serve_until_retired(
    listener: UnixListener,
    apps: &'static DaemonApps,
    options: ServeOptions,
    workers: &mut Vec<std::thread::JoinHandle<()>>,
) -> io::Result<Retired> {
    let mut poll = Poll::new()?;
    listener.set_nonblocking(true)?;
    let listener_fd = listener.as_raw_fd();
    poll.registry()
        .register(&mut SourceFd(&listener_fd), LISTENER, Interest::READABLE)?;

    let threads = options.threads.max(1);
    let (done, from_workers) = mpsc::channel::<Handover>();
    let shared = Arc::new(Shared {
        apps,
        activity: Activity {
            app_deadline_ms: (0..threads).map(|_| AtomicU64::new(0)).collect(),
            app_limit_ms: (0..threads).map(|_| AtomicU64::new(0)).collect(),
            ..Activity::default()
        },
        options,
        epoch: Instant::now(),
        ready: ReadySet::new()?,
        done,
        waker: Waker::new(poll.registry(), WAKE)?,
    });
    for n in 0..threads {
        let mut builder = std::thread::Builder::new().name(format!("rustapp-daemon-{n}"));
        if let Some(size) = shared.options.stack_size {
            builder = builder.stack_size(size);
        }
        let shared = shared.clone();
        workers.push(builder.spawn(move || work(n, &shared))?);
    }
    // Workers wait on the ready set until it stops, when serving ends here.
    let _stop_workers = StopOnDrop(shared.clone());
    let mut state = LoopState {
        registry: poll.registry().try_clone()?,
        shared: shared.clone(),
        waiting: HashMap::new(),
        tunnels: HashMap::new(),
        next_id: 1,
        retiring: None,
    };
    let (options, activity) = (&shared.options, &shared.activity);

    let mut events = Events::with_capacity(256);
    let mut last_idle_check = Instant::now();
    let mut watched = Watched::new(&options.recycle);
    // Since when this process has waited for its turn to retire.
    let mut awaiting_turn = None;
    loop {
        // Once a second; while retiring, often enough that the last request's end is seen at
        // once (a process with none running would otherwise wait out the second).
        let look = if state.retiring.is_some() {
            RETIRING_LOOK
        } else {
            Duration::from_secs(1)
        };
        if let Err(e) = poll.poll(&mut events, Some(look)) {
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        for event in &events {
            match event.token() {
                LISTENER if state.retiring.is_none() => loop {
                    match listener.accept() {
                        Ok((stream, _)) => state.accepted(stream),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => {
                            log::error!("daemon: accepting a connection failed: {e}");
                            break;
                        }
                    }
                },
                LISTENER | WAKE => {}
                token => state.on_event(token, event),
            }
        }
        // What the workers leave to the event loop.
        for handover in from_workers.try_iter() {
            match handover {
                Handover::Waiting(stream, wait) if state.retiring.is_some() => {
                    state.end_if_waiting_for_events(stream, wait);
                }
                Handover::Waiting(stream, wait) => state.park(stream, wait),
                Handover::Tunnel(conn) => state.open_tunnel(conn),
            }
        }
        if last_idle_check.elapsed() >= IDLE_CHECK {
            state.abort_idle_streams();
            last_idle_check = Instant::now();
        }
        if let Some(stuck) = stuck_call(activity, shared.epoch) {
            options.figures.ending(EndReason::RequestTimeout);
            // Its Apache child has answered 504 already; the thread cannot be stopped from
            // outside, so the process ends and its supervisor starts another.
            let limit = if stuck.limit == options.request_timeout {
                "its request-timeout"
            } else {
                "the URL's stream-idle-timeout"
            };
            return Err(io::Error::other(format!(
                "a call into the application ran past {limit} of {} s and has not returned {} s later: its thread cannot be freed, so this process is replaced",
                stuck.limit.as_secs(),
                stuck.past.as_secs()
            )));
        }
        match &state.retiring {
            None => {
                if let Some((why, reason)) = reason_to_retire(
                    &options.recycle,
                    activity,
                    shared.apps,
                    shared.epoch,
                    &mut watched,
                    &options.figures,
                ) {
                    if takes_its_turn(options, why, &reason, &mut awaiting_turn) {
                        log::info!("daemon process {} retires: {reason}", std::process::id());
                        options.figures.ending(why);
                        let _ = poll.registry().deregister(&mut SourceFd(&listener_fd));
                        state.retire(reason);
                    }
                }
            }
            Some((reason, since)) => {
                // Requests running or waiting, and connections accepted before retiring that
                // have not had their first turn yet.
                let running = activity.outstanding.load(Ordering::Acquire) + shared.ready.waiting();
                let limit = if STOP_REQUESTED.load(Ordering::Acquire) {
                    options.recycle.shutdown_timeout
                } else {
                    options.recycle.graceful_timeout
                };
                if running == 0 {
                    return Ok(Retired {
                        reason: reason.clone(),
                        clean_up_until: Some(*since + limit),
                    });
                }
                if since.elapsed() > limit {
                    return Ok(Retired {
                        reason: format!(
                            "{reason}; {running} requests still running at its graceful-timeout were cut off"
                        ),
                        clean_up_until: None,
                    });
                }
            }
        }
    }
}

/// A response waiting on the event loop.
struct Waiting {
    stream: Stream,
    /// The body's descriptor, while it waits for the body.
    body_fd: Option<RawFd>,
}

/// How often a retiring process looks whether its last request has ended.
const RETIRING_LOOK: Duration = Duration::from_millis(50);

/// Whether the process may retire for `reason` now: at once when Apache restarts or stops (the
/// next generation, or nobody, takes over), else when it gets its group's turn (see
/// `rolling`), which it keeps until it has exited; until then it goes on serving, and asks
/// again at the next look. `awaiting_turn` is since when it has asked. A turn that does not
/// come within graceful-timeout (a replacement that cannot start holds it) is not waited
/// for longer: a process past a limit must not run on for ever.
fn takes_its_turn(
    options: &ServeOptions,
    why: EndReason,
    reason: &str,
    awaiting_turn: &mut Option<Instant>,
) -> bool {
    // Apache's restart or stop, and an elastic group shrinking (its other processes serve),
    // need no replacement serving first.
    let no_turn = matches!(
        why,
        EndReason::Stopping | EndReason::GracefulRestart | EndReason::IdleTimeout
    );
    let Some(lock) = options.roll_lock.as_ref().filter(|_| !no_turn) else {
        return true;
    };
    if lock.try_take() {
        return true;
    }
    let since = *awaiting_turn.get_or_insert_with(|| {
        log::info!(
            "daemon process {} would retire ({reason}); it serves on until no other process of its group is being replaced",
            std::process::id()
        );
        Instant::now()
    });
    let limit = options.recycle.graceful_timeout;
    if since.elapsed() < limit {
        return false;
    }
    log::warn!(
        "daemon process {} did not get its group's turn to retire within graceful-timeout ({} s): another process's replacement has not started serving; it retires anyway ({reason})",
        std::process::id(),
        limit.as_secs()
    );
    true
}

/// The event loop's waiting responses and tunnels. Each has an id: a waiting response's
/// connection and a tunnel's connection are watched under token `2 * id`, a waiting body under
/// `2 * id + 1` (ids start at 1, so no token is the listener's or the waker's).
struct LoopState {
    registry: Registry,
    shared: Arc<Shared>,
    waiting: HashMap<usize, Waiting>,
    /// Connections whose Apache child relays an application's socket: open while it does.
    tunnels: HashMap<usize, Connection>,
    next_id: usize,
    /// Set once the process starts retiring (why, and since when): a connection that comes
    /// free is then told goodbye.
    retiring: Option<(String, Instant)>,
}

impl LoopState {
    fn new_id(&mut self) -> usize {
        self.next_id += 1;
        self.next_id - 1
    }

    /// A new connection waits for its greeting, in the ready set.
    fn accepted(&mut self, stream: std::os::unix::net::UnixStream) {
        os::widen_send_buffer(&stream);
        // Once for the connection's life: how long a worker waits for the rest of a frame.
        if let Err(e) = stream.set_read_timeout(Some(self.shared.options.socket_timeout)) {
            log::error!("daemon: cannot set up a new connection: {e}; it is closed");
            return;
        }
        self.keep_idle(Connection::new(stream, self.shared.options.limits));
    }

    /// A connection waits for its next request (or, while the process retires, is told
    /// goodbye, so that the Apache child sends its next request elsewhere).
    fn keep_idle(&mut self, conn: Connection) {
        if let Some(conn) = self.shared.ready.keep_idle(conn) {
            say_goodbye(conn);
        }
    }

    /// A response waits: its connection is watched (for the Apache child giving up on it, and
    /// for room when output is queued), and its body's descriptor if it waits for the body.
    fn park(&mut self, stream: Stream, wait: Wait) {
        let id = self.new_id();
        let body_fd = match wait {
            Wait::Body(fd) => Some(fd),
            Wait::Writable => None,
        };
        let conn_fd = stream.connection_fd();
        let mut interest = Interest::READABLE;
        if stream.queued() > 0 {
            interest = interest.add(Interest::WRITABLE);
        }
        let registered = self
            .registry
            .register(&mut SourceFd(&conn_fd), Token(2 * id), interest)
            .and_then(|()| match body_fd {
                Some(fd) => self.registry.register(
                    &mut SourceFd(&fd),
                    Token(2 * id + 1),
                    Interest::READABLE,
                ),
                None => Ok(()),
            });
        if let Err(e) = registered {
            log::error!("daemon: cannot wait for a response: {e}; it is dropped");
            let _ = self.registry.deregister(&mut SourceFd(&conn_fd));
            self.finished(None);
            stream.cancel();
            return;
        }
        self.waiting.insert(id, Waiting { stream, body_fd });
        self.shared.options.figures.streams(self.waiting.len());
    }

    /// Stops watching a waiting response and takes it.
    fn unpark(&mut self, id: usize) -> Option<Stream> {
        let waiting = self.waiting.remove(&id)?;
        self.shared.options.figures.streams(self.waiting.len());
        let conn_fd = waiting.stream.connection_fd();
        let _ = self.registry.deregister(&mut SourceFd(&conn_fd));
        if let Some(fd) = waiting.body_fd {
            let _ = self.registry.deregister(&mut SourceFd(&fd));
        }
        Some(waiting.stream)
    }

    /// A response that waited is over: its connection idles, or is gone.
    fn finished(&mut self, conn: Option<Connection>) {
        self.shared.one_less_outstanding();
        if let Some(conn) = conn {
            self.keep_idle(conn);
        }
    }

    /// A response switched protocols: the Apache child relays the application's socket, and
    /// its connection is watched for the child closing it, which ends the tunnel.
    fn open_tunnel(&mut self, conn: Connection) {
        let id = self.new_id();
        let fd = conn.stream.as_raw_fd();
        match self
            .registry
            .register(&mut SourceFd(&fd), Token(2 * id), Interest::READABLE)
        {
            Ok(()) => {
                self.tunnels.insert(id, conn);
                self.shared.options.figures.tunnels(self.tunnels.len());
            }
            Err(e) => {
                log::error!("daemon: cannot watch a switched connection: {e}; it is closed");
                self.close_tunnel(None);
            }
        }
    }

    /// A tunnel is over (the Apache child closed, or sent something it should not): its
    /// connection closes, and it no longer counts.
    fn close_tunnel(&mut self, conn: Option<Connection>) {
        if let Some(conn) = conn {
            let _ = self
                .registry
                .deregister(&mut SourceFd(&conn.stream.as_raw_fd()));
        }
        self.shared.activity.tunnels.fetch_sub(1, Ordering::AcqRel);
        self.finished(None);
    }

    fn on_event(&mut self, token: Token, event: &Event) {
        let (id, is_body) = (token.0 / 2, token.0 % 2 == 1);
        if let Some(conn) = self.tunnels.remove(&id) {
            self.shared.options.figures.tunnels(self.tunnels.len());
            return self.close_tunnel(Some(conn));
        }
        if !self.waiting.contains_key(&id) {
            return;
        }
        if is_body {
            // The body can go on: to a worker, which pulls it again.
            if let Some(stream) = self.unpark(id) {
                self.shared.ready.push(Work::Resume(stream));
            }
            return;
        }
        let answers_body_read = self
            .waiting
            .get(&id)
            .is_some_and(|waiting| waiting.stream.waits_for_input());
        if answers_body_read && event.is_readable() && !event.is_read_closed() {
            // The Apache child answered the body's read (the client sent more): a worker
            // reads it and pulls the body again. (A `Cancel` read there ends the body.)
            if let Some(stream) = self.unpark(id) {
                self.shared.ready.push(Work::Resume(stream));
            }
            return;
        }
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            // During a response the Apache child sends nothing but `Cancel`, or closes: its
            // client went away. The body is dropped at once (its clean-up runs).
            if let Some(stream) = self.unpark(id) {
                log::debug!("daemon: the Apache child gave up a response (its client went away)");
                stream.cancel();
                self.finished(None);
            }
            return;
        }
        if event.is_writable() {
            self.on_writable(id);
        }
    }

    /// Room on a waiting response's connection: write what is queued.
    fn on_writable(&mut self, id: usize) {
        let Some(waiting) = self.waiting.get_mut(&id) else {
            return;
        };
        let flushed = waiting.stream.flush_queued();
        let finished = waiting.stream.is_finished();
        let waits_for_body = waiting.body_fd.is_some();
        let queued = waiting.stream.queued();
        match flushed {
            Err(_) => {
                if let Some(stream) = self.unpark(id) {
                    stream.cancel();
                    self.finished(None);
                }
            }
            Ok(true) if finished => {
                if let Some(stream) = self.unpark(id) {
                    let conn = stream.into_connection();
                    self.finished(conn);
                }
            }
            // Still writing the end, or the body has nothing yet anyway.
            Ok(_) if finished || waits_for_body => {}
            // Room enough: the body is asked for more.
            Ok(_) if queued < HIGH_WATER / 2 => {
                if let Some(stream) = self.unpark(id) {
                    self.shared.ready.push(Work::Resume(stream));
                }
            }
            Ok(_) => {}
        }
    }

    /// Responses whose body has produced nothing for longer than their limit are aborted (the
    /// Apache child logs why); their connections stay usable.
    fn abort_idle_streams(&mut self) {
        let now = Instant::now();
        let expired: Vec<(usize, Duration)> = self
            .waiting
            .iter()
            .filter(|(_, w)| w.body_fd.is_some())
            .filter_map(|(&id, w)| Some((id, w.stream.idle_past_limit(now)?)))
            .collect();
        for (id, limit) in expired {
            let Some(stream) = self.unpark(id) else {
                continue;
            };
            let reason = format!(
                "the response produced nothing for {} s, its limit (stream-idle-timeout, else request-timeout); it was aborted",
                limit.as_secs()
            );
            let abort = Frame::ResponseAbort {
                reason: Bytes::from(reason),
            };
            let conn = stream.end_with(&[abort]);
            self.finished(conn);
        }
    }

    /// A response coming back to wait while the process retires: one waiting for events ends
    /// cleanly now (so that a client reconnects, to the next process); one writing its output
    /// finishes.
    fn end_if_waiting_for_events(&mut self, stream: Stream, wait: Wait) {
        match wait {
            Wait::Body(_) => {
                let conn = stream.end_with(&[Frame::ResponseEnd, Frame::Goodbye]);
                drop(conn);
                self.finished(None);
            }
            Wait::Writable => self.park(stream, wait),
        }
    }

    /// The process starts retiring: idle connections are told goodbye, and responses waiting
    /// for events end cleanly.
    fn retire(&mut self, reason: String) {
        self.retiring = Some((reason, Instant::now()));
        for conn in self.shared.ready.close_idle() {
            say_goodbye(conn);
        }
        let waiting_for_events: Vec<usize> = self
            .waiting
            .iter()
            .filter(|(_, w)| w.body_fd.is_some())
            .map(|(&id, _)| id)
            .collect();
        for id in waiting_for_events {
            if let Some(stream) = self.unpark(id) {
                self.end_if_waiting_for_events(stream, Wait::Body(-1));
            }
        }
    }
}

/// Stops the workers when the event loop ends.
struct StopOnDrop(Arc<Shared>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.ready.stop();
    }
}
