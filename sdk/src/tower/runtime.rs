//! The SDK's tokio runtime, one per serving process.

use std::future::Future;
use std::os::fd::RawFd;
use std::pin::pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;

use tokio::runtime::Runtime;

use crate::ready::ReadyFd;
use crate::{Error, Settings};

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// Most CPUs a process's workers use by default: request futures run on Apache's threads.
const DEFAULT_MAX_WORKERS: usize = 4;

/// Creates the runtime on first use, sized by the first instance's settings.
pub(crate) fn start(settings: &Settings) -> Result<&'static Runtime, Error> {
    if let Some(runtime) = RUNTIME.get() {
        return Ok(runtime);
    }
    let workers = match settings.parse::<usize>("rustapp.worker_threads")? {
        Some(0) => return Err("the setting rustapp.worker_threads must be at least 1".into()),
        Some(n) => n,
        None => std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(DEFAULT_MAX_WORKERS),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("rustapp-worker")
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    log::debug!("rustapp: async runtime started with {workers} worker threads");
    Ok(RUNTIME.get_or_init(|| runtime))
}

/// The runtime, once `start` has run in this process.
pub(crate) fn get() -> &'static Runtime {
    RUNTIME
        .get()
        .expect("the runtime starts with the first instance")
}

/// Runs `future` to completion on the calling (Apache's) thread, inside the runtime's context
/// so timers and IO work.
///
/// Not tokio's `Runtime::block_on`: from a thread outside the runtime that takes a lock shared
/// by every thread (it seeds a random generator) on each call, and Apache calls this for every
/// request from all of its threads. Most request futures finish on the first poll here.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    let _context = get().enter();
    let waker = THREAD_WAKER.with(Waker::clone);
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        // A wake-up between the poll and here makes `park` return at once.
        std::thread::park();
    }
}

/// As `block_on`, but between polls `between` may name a descriptor to wait for as well (the
/// client's next bytes, which a demand for the request body waits for).
pub(crate) fn block_on_or_input<F: Future>(
    future: F,
    mut between: impl FnMut(&Waker) -> Option<RawFd>,
) -> F::Output {
    let _context = get().enter();
    THREAD_READY.with(|ready| {
        let waker = ready.waker();
        let mut cx = Context::from_waker(&waker);
        let mut future = pin!(future);
        let mut polled_again = 0;
        loop {
            ready.drain();
            if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                return output;
            }
            let input = between(&waker);
            // Woken while polled (by itself) or by `between` (a demand answered): again at
            // once, without a system call (a few times in a row; then through the wait, which
            // sees the wake-up and returns at once).
            if ready.woken() && polled_again < crate::ready::POLLED_AGAIN {
                polled_again += 1;
                continue;
            }
            polled_again = 0;
            // A wake-up since the drain leaves the eventfd readable: the wait returns at once.
            if ready.wait_or(input).is_err() {
                // No descriptor to spare: look again shortly rather than never.
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
    })
}

/// Wakes the thread it was made on.
struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

thread_local! {
    static THREAD_WAKER: Waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    /// What `block_on_or_input` waits on: made once per thread.
    static THREAD_READY: Arc<ReadyFd> = ReadyFd::new();
}
