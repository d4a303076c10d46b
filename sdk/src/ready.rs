//! What a waiting response body gives the host: a descriptor (an eventfd) that becomes
//! readable when the body can go on, and the `Waker` that makes it so.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::task::{Wake, Waker};

pub(crate) struct ReadyFd(OwnedFd);

impl ReadyFd {
    pub(crate) fn new() -> io::Result<Arc<ReadyFd>> {
        // SAFETY: eventfd returns a new descriptor or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a descriptor this process just opened and nothing else owns.
        Ok(Arc::new(ReadyFd(unsafe { OwnedFd::from_raw_fd(fd) })))
    }

    pub(crate) fn raw(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    /// A waker that makes the descriptor readable.
    pub(crate) fn waker(self: &Arc<Self>) -> Waker {
        Waker::from(self.clone())
    }

    /// Makes the descriptor unreadable again (before the body is polled).
    pub(crate) fn drain(&self) {
        let mut count = 0u64;
        // SAFETY: reads 8 bytes into `count`; the descriptor is non-blocking.
        unsafe { libc::read(self.raw(), (&raw mut count).cast(), 8) };
    }

    /// Blocks until the descriptor is readable (for a host that does not accept pending
    /// bodies).
    pub(crate) fn wait(&self) {
        let mut poll = libc::pollfd {
            fd: self.raw(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd; returns when readable (or on a signal, when the caller polls
        // the body again anyway).
        unsafe { libc::poll(&mut poll, 1, -1) };
    }

    fn signal(&self) {
        let one = 1u64;
        // SAFETY: writes 8 bytes to the eventfd; a full counter (never in practice) only means
        // it is readable already.
        unsafe { libc::write(self.raw(), (&raw const one).cast(), 8) };
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
