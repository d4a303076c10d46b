//! An application's figures as Apache's children count them: requests, errors, requests in
//! flight, and a latency histogram. Written with relaxed atomic adds, with no lock, each
//! thread into one of several stripes (on cache lines of their own), so that the threads of
//! Apache's children do not all write the same cache line on every request; readers add the
//! stripes up.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::ffi::SharedWords;

/// Requests begun; those in flight are the begun less the ended (the histogram's count), so
/// that a request costs three atomic adds: one as it begins, two as it ends.
pub(super) const BEGUN: usize = 0;
pub(super) const ERRORS: usize = 1;
/// Total time of the requests, in microseconds.
pub(super) const SUM_US: usize = 3;
/// Requests by bucket (not cumulative): `BUCKET_BOUNDS_US[i]` or less, then the rest.
pub(super) const BUCKETS: usize = 4;

/// Upper bounds of the latency buckets, in microseconds (1 ms to 10 s).
pub(crate) const BUCKET_BOUNDS_US: [u64; 13] = [
    1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    5_000_000, 10_000_000,
];
/// One stripe: the words above, padded to whole 64-byte cache lines.
const STRIPE_WORDS: usize = (BUCKETS + BUCKET_BOUNDS_US.len() + 1).div_ceil(8) * 8;
const STRIPES: usize = 32;

/// The stripe this thread writes: threads of one process take turns, and processes start at
/// different places.
fn stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: usize =
            (NEXT.fetch_add(1, Ordering::Relaxed) + 7 * std::process::id() as usize) % STRIPES;
    }
    STRIPE.with(|s| *s)
}

pub(crate) struct AliasFigures {
    /// The mount point, and the library (labels).
    pub(crate) mount: String,
    pub(crate) library: String,
    words: SharedWords,
}

impl AliasFigures {
    pub(super) fn new(mount: &str, library: &str) -> std::io::Result<AliasFigures> {
        Ok(AliasFigures {
            mount: mount.to_owned(),
            library: library.to_owned(),
            words: SharedWords::new(STRIPES * STRIPE_WORDS)?,
        })
    }

    pub(super) fn key(&self) -> (&str, &str) {
        (&self.mount, &self.library)
    }

    pub(super) fn shared_words(&self) -> &SharedWords {
        &self.words
    }

    /// `word` added up over the stripes.
    pub(super) fn total(&self, word: usize) -> u64 {
        self.words
            .words()
            .chunks_exact(STRIPE_WORDS)
            .map(|stripe| stripe[word].load(Ordering::Acquire))
            .fold(0, u64::wrapping_add)
    }

    fn add(&self, word: usize, n: u64) {
        if let Some(w) = self.words.words().get(stripe() * STRIPE_WORDS + word) {
            w.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub(crate) fn request_began(&self) {
        self.add(BEGUN, 1);
    }

    /// The request took `took`; `failed` when Apache answered an error for it.
    pub(crate) fn request_over(&self, took: Duration, failed: bool) {
        if failed {
            self.add(ERRORS, 1);
        }
        let us = took.as_micros() as u64;
        self.add(SUM_US, us);
        let bucket = BUCKET_BOUNDS_US
            .iter()
            .position(|&bound| us <= bound)
            .unwrap_or(BUCKET_BOUNDS_US.len());
        self.add(BUCKETS + bucket, 1);
    }
}
