//! What a waiting response body gives the host: a descriptor (an eventfd) that becomes
//! readable when the body can go on, and the `Waker` that makes it so.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Wake, Waker};

/// How many times in a row a future or body that woke itself while polled is polled again at
/// once, before its driver waits (and so returns to the host) all the same.
pub(crate) const POLLED_AGAIN: u32 = 16;

/// Made only once something waits on it: most bodies never do, and then cost no descriptor.
///
/// A wake-up writes the descriptor only while someone waits on it (`arm` until `drain`): many
/// futures wake themselves while they are polled (a channel they feed, a yield), and those
/// wake-ups only set `woken`, which the driver looks at before it waits.
pub(crate) struct ReadyFd {
    fd: OnceLock<OwnedFd>,
    /// A wake-up came since the last `drain`.
    woken: AtomicBool,
    /// Someone waits (or is about to) on the descriptor: a wake-up must make it readable.
    armed: AtomicBool,
    /// The descriptor was written since it was last read.
    written: AtomicBool,
}

impl ReadyFd {
    pub(crate) fn new() -> Arc<ReadyFd> {
        Arc::new(ReadyFd {
            fd: OnceLock::new(),
            woken: AtomicBool::new(false),
            armed: AtomicBool::new(false),
            written: AtomicBool::new(false),
        })
    }

    /// The descriptor, made now if it was not, and watched from now until the next `drain`:
    /// readable if a wake-up came since the last `drain`. Call it once the body (or future)
    /// said it waits.
    pub(crate) fn arm(&self) -> io::Result<RawFd> {
        let fd = match self.fd.get() {
            Some(fd) => fd.as_raw_fd(),
            None => {
                // SAFETY: eventfd returns a new descriptor or -1.
                let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
                if fd < 0 {
                    return Err(io::Error::last_os_error());
                }
                // SAFETY: a descriptor this process just opened and nothing else owns.
                let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                // Only the thread driving the body arms it; the wake-ups may come from others.
                self.fd.get_or_init(|| owned).as_raw_fd()
            }
        };
        // Either a wake-up from now on sees `armed`, or this sees its `woken` (both SeqCst).
        self.armed.store(true, Ordering::SeqCst);
        // A wake-up that came before (while polled, or before the descriptor was made) shows
        // on it now.
        if self.woken.load(Ordering::SeqCst) {
            self.write(fd);
        }
        Ok(fd)
    }

    /// The descriptor, if it was made.
    pub(crate) fn raw(&self) -> Option<RawFd> {
        self.fd.get().map(AsRawFd::as_raw_fd)
    }

    /// A waker that makes the descriptor readable.
    pub(crate) fn waker(self: &Arc<Self>) -> Waker {
        Waker::from(self.clone())
    }

    /// Whether a wake-up came since the last `drain` (the future woke itself while polled:
    /// poll it again rather than wait).
    pub(crate) fn woken(&self) -> bool {
        self.woken.load(Ordering::SeqCst)
    }

    /// Forgets the wake-ups so far and stops watching (before the body is polled again).
    pub(crate) fn drain(&self) {
        self.armed.store(false, Ordering::SeqCst);
        self.woken.store(false, Ordering::SeqCst);
        if self.written.swap(false, Ordering::SeqCst) {
            if let Some(fd) = self.raw() {
                let mut count = 0u64;
                // SAFETY: reads 8 bytes into `count`; the descriptor is non-blocking.
                unsafe { libc::read(fd, (&raw mut count).cast(), 8) };
            }
        }
    }

    /// Blocks until the descriptor is readable (for a host that does not accept pending
    /// bodies).
    pub(crate) fn wait(&self) -> io::Result<()> {
        self.wait_or(None)
    }

    /// Blocks until the descriptor or `also` (when given) is readable.
    pub(crate) fn wait_or(&self, also: Option<RawFd>) -> io::Result<()> {
        let mut fds = [
            libc::pollfd {
                fd: self.arm()?,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: also.unwrap_or(-1),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: two pollfds in a live array (a negative descriptor is ignored); returns when
        // one is readable (or on a signal, when the caller looks again anyway).
        unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        Ok(())
    }

    fn signal(&self) {
        self.woken.store(true, Ordering::SeqCst);
        if self.armed.load(Ordering::SeqCst) {
            if let Some(fd) = self.raw() {
                self.write(fd);
            }
        }
    }

    /// Makes the eventfd readable. `written` is set after the write, so that a `drain` that
    /// finds it set always finds something to read, or finds it set again later.
    fn write(&self, fd: RawFd) {
        let one = 1u64;
        // SAFETY: writes 8 bytes to the eventfd; a full counter (never in practice) only means
        // it is readable already.
        unsafe { libc::write(fd, (&raw const one).cast(), 8) };
        self.written.store(true, Ordering::SeqCst);
    }
}

impl Wake for ReadyFd {
    fn wake(self: Arc<Self>) {
        self.signal();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.signal();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readable(fd: RawFd) -> bool {
        let mut pollfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one live pollfd, no waiting.
        unsafe { libc::poll(&mut pollfd, 1, 0) == 1 }
    }

    #[test]
    fn a_wake_up_shows_on_the_descriptor_only_while_it_is_watched() {
        let ready = ReadyFd::new();
        let waker = ready.waker();
        // While polled (not watched): only the flag, and no descriptor is made for it.
        waker.wake_by_ref();
        assert!(ready.woken());
        assert!(ready.raw().is_none());
        // Watched from now: the earlier wake-up shows.
        let fd = ready.arm().unwrap();
        assert!(readable(fd));
        ready.drain();
        assert!(!ready.woken() && !readable(fd));

        waker.wake_by_ref();
        assert!(ready.woken() && !readable(fd), "not watched, yet written");
        ready.drain();
        ready.arm().unwrap();
        assert!(!readable(fd), "a drained wake-up showed");
        // Watched: a wake-up from another thread makes it readable, and a drain empties it.
        std::thread::spawn(move || waker.wake()).join().unwrap();
        assert!(readable(fd));
        ready.drain();
        assert!(!readable(fd));
    }
}
