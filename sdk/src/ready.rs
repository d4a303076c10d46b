//! What a waiting response body gives the host: a descriptor (an eventfd) that becomes
//! readable when the body can go on, and the `Waker` that makes it so.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Wake, Waker};

/// Made only once something waits on it: most bodies never do, and then cost no descriptor.
pub(crate) struct ReadyFd {
    fd: OnceLock<OwnedFd>,
    /// A wake-up came since the last `drain`: it shows on the descriptor once there is one.
    woken: AtomicBool,
}

impl ReadyFd {
    pub(crate) fn new() -> Arc<ReadyFd> {
        Arc::new(ReadyFd {
            fd: OnceLock::new(),
            woken: AtomicBool::new(false),
        })
    }

    /// The descriptor, made now if it was not: readable if a wake-up came since the last
    /// `drain`. Call it once the body (or future) said it waits.
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
        // A wake-up that came before the descriptor did shows on it now.
        if self.woken.load(Ordering::SeqCst) {
            write_one(fd);
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

    /// Forgets the wake-ups so far (before the body is polled again).
    pub(crate) fn drain(&self) {
        self.woken.store(false, Ordering::SeqCst);
        if let Some(fd) = self.raw() {
            let mut count = 0u64;
            // SAFETY: reads 8 bytes into `count`; the descriptor is non-blocking.
            unsafe { libc::read(fd, (&raw mut count).cast(), 8) };
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
        if let Some(fd) = self.raw() {
            write_one(fd);
        }
    }
}

/// Makes an eventfd readable.
fn write_one(fd: RawFd) {
    let one = 1u64;
    // SAFETY: writes 8 bytes to the eventfd; a full counter (never in practice) only means it
    // is readable already.
    unsafe { libc::write(fd, (&raw const one).cast(), 8) };
}

impl Wake for ReadyFd {
    fn wake(self: Arc<Self>) {
        self.signal();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.signal();
    }
}
