//! The ready set: one event set that every worker waits on itself.
//!
//! Idle connections are watched here with one-shot readiness: the one worker the kernel wakes
//! for a connection owns it until it gives it back, so a request goes from the socket to the
//! thread that answers it without passing through another thread (the event loop only watches
//! what is rarer: new connections, waiting responses, tunnels). Work the event loop hands over
//! (a waiting response that can go on, a connection whose next request is read already) waits
//! in a queue counted by a semaphore eventfd in the same set, so that a worker wakes for
//! whichever comes first.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::os::fd::AsFd;
use std::sync::Mutex;

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};

use super::stream::Stream;
use crate::daemon::connection::Connection;

/// The queue's event.
const QUEUED: u64 = 0;
/// The stop event.
const STOP: u64 = 1;
/// Connection ids start here.
const FIRST_ID: u64 = 2;

/// Something for a worker to do.
pub(super) enum Work {
    /// A connection with something to read: a greeting, a request or a user query.
    Serve(Connection),
    /// A waiting response that can go on.
    Resume(Stream),
}

pub(super) struct ReadySet {
    epoll: Epoll,
    idle: Mutex<Idle>,
    queue: Mutex<VecDeque<Work>>,
    /// How many items `queue` holds: each read takes one.
    queued: EventFd,
    /// Written once, never read: every worker that waits sees it.
    stop: EventFd,
}

/// Connections waiting for their next request, by the id they are watched under.
struct Idle {
    conns: HashMap<u64, Connection>,
    next_id: u64,
    /// The process retires: no connection waits any more.
    closed: bool,
}

impl ReadySet {
    pub(super) fn new() -> io::Result<ReadySet> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        let queued = EventFd::from_value_and_flags(
            0,
            EfdFlags::EFD_SEMAPHORE | EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC,
        )?;
        let stop = EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC)?;
        epoll.add(&queued, EpollEvent::new(EpollFlags::EPOLLIN, QUEUED))?;
        epoll.add(&stop, EpollEvent::new(EpollFlags::EPOLLIN, STOP))?;
        Ok(ReadySet {
            epoll,
            idle: Mutex::new(Idle {
                conns: HashMap::new(),
                next_id: FIRST_ID,
                closed: false,
            }),
            queue: Mutex::new(VecDeque::new()),
            queued,
            stop,
        })
    }

    /// The next thing to do, waiting for it; `None` once the set is stopped.
    pub(super) fn next(&self) -> Option<Work> {
        let mut events = [EpollEvent::empty()];
        loop {
            match self.epoll.wait(&mut events, EpollTimeout::NONE) {
                Ok(0) | Err(Errno::EINTR) => continue,
                Ok(_) => {}
                Err(e) => {
                    log::error!("daemon: waiting for work failed: {e}; this worker stops");
                    return None;
                }
            }
            match events[0].data() {
                STOP => return None,
                QUEUED => {
                    // Another worker may have taken the item this wake-up was for.
                    if self.queued.read().is_ok() {
                        if let Some(work) = lock(&self.queue).pop_front() {
                            return Some(work);
                        }
                    }
                }
                id => {
                    // Gone when the process began retiring since (it was told goodbye).
                    if let Some(conn) = lock(&self.idle).conns.remove(&id) {
                        return Some(Work::Serve(conn));
                    }
                }
            }
        }
    }

    /// Hands `work` to the next free worker.
    pub(super) fn push(&self, work: Work) {
        lock(&self.queue).push_back(work);
        if let Err(e) = self.queued.write(1) {
            // Cannot happen below 2^64 - 1 items; the item waits for the next write.
            log::error!("daemon: signalling queued work failed: {e}");
        }
    }

    /// `conn` waits for its next request; it is given back when it cannot, because the process
    /// retires.
    ///
    /// A connection stays in the set from its first wait until it closes (closing its only
    /// descriptor removes it): while a worker holds it, or a response on it waits on the event
    /// loop, it is disarmed, and waiting again re-arms it.
    pub(super) fn keep_idle(&self, mut conn: Connection) -> Option<Connection> {
        if conn.has_buffered_input() {
            // The next request is here already: the peer will not signal it again.
            self.push(Work::Serve(conn));
            return None;
        }
        let mut idle = lock(&self.idle);
        if idle.closed {
            return Some(conn);
        }
        let watched = conn.watched_as.is_some();
        let id = *conn.watched_as.get_or_insert_with(|| {
            idle.next_id += 1;
            idle.next_id - 1
        });
        let mut event = EpollEvent::new(
            EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLONESHOT,
            id,
        );
        // Armed while `idle` is locked: a worker woken for it at once waits for the insert.
        let fd = conn.stream.as_fd();
        let armed = if watched {
            self.epoll.modify(fd, &mut event)
        } else {
            self.epoll.add(fd, event)
        };
        match armed {
            Ok(()) => {
                idle.conns.insert(id, conn);
            }
            Err(e) => log::error!("daemon: cannot watch an idle connection: {e}; it is closed"),
        }
        None
    }

    /// The process retires: every idle connection is taken out (to be told goodbye), and
    /// none waits from now on. A connection not yet greeted stays: its Apache child sends its
    /// first request right behind the greeting, and it is served like one in progress.
    pub(super) fn close_idle(&self) -> Vec<Connection> {
        let mut idle = lock(&self.idle);
        idle.closed = true;
        let greeted: Vec<u64> = idle
            .conns
            .iter()
            .filter(|(_, conn)| conn.greeted)
            .map(|(&id, _)| id)
            .collect();
        // Disarmed from here on; closing them removes them from the set.
        greeted
            .into_iter()
            .filter_map(|id| idle.conns.remove(&id))
            .map(|mut conn| {
                let _ = self.epoll.delete(conn.stream.as_fd());
                conn.watched_as = None;
                conn
            })
            .collect()
    }

    /// Connections still waiting in the set: after `close_idle`, those accepted but not yet
    /// greeted, whose first request is on its way and is still served.
    pub(super) fn waiting(&self) -> usize {
        lock(&self.idle).conns.len()
    }

    /// Whether the process retires (no connection waits any more).
    pub(super) fn is_closed(&self) -> bool {
        lock(&self.idle).closed
    }

    /// Every worker returns from `next` (now or when it next waits).
    pub(super) fn stop(&self) {
        let _ = self.stop.write(1);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A worker that panicked while holding it left consistent data: every change is one call.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
