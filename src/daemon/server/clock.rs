//! The clock on calls into application code: a worker records, while it runs one, when that
//! call passes its limit (see `recycle::stuck_call`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::figures::{ProcessFigures, Running};

/// A worker's record of running application code: while it does, when that call passes its
/// limit. A call that has not returned a while after (its thread cannot be freed) makes the
/// process retire (see `recycle::stuck_call`).
pub(super) struct AppClock<'s> {
    pub(super) deadline_ms: &'s AtomicU64,
    pub(super) limit_ms: &'s AtomicU64,
    /// When serving began; the times count from it.
    pub(super) epoch: Instant,
    /// Where the worker shows what it runs.
    pub(super) figures: &'s ProcessFigures,
    pub(super) worker: usize,
}

/// Marks the end of a call into application code when dropped.
pub(super) struct InApp<'c>(&'c AtomicU64);

impl Drop for InApp<'_> {
    fn drop(&mut self) {
        self.0.store(0, Ordering::Release);
    }
}

impl AppClock<'_> {
    /// A call into application code that should not take longer than `limit` begins.
    pub(super) fn enter(&self, limit: Duration) -> InApp<'_> {
        let now_ms = self.epoch.elapsed().as_millis() as u64;
        let deadline = now_ms + limit.as_millis() as u64 + 1;
        self.limit_ms
            .store(limit.as_millis() as u64, Ordering::Release);
        self.deadline_ms.store(deadline, Ordering::Release);
        InApp(self.deadline_ms)
    }

    /// The worker runs a request for `url` until the guard drops (for the status figures).
    pub(super) fn running(&self, url: &[u8]) -> Running<'_> {
        self.figures.running(self.worker, url)
    }
}
