//! What a daemon process writes into its own slot of its group's figures: that it serves or
//! retires (and why), how many requests it served, and what each of its threads runs now (a
//! thread running a request is a busy one); and what an elastic group's processes read of
//! one another to grow and shrink. Every write is one atomic store or add; nothing waits.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::group::{
    GroupFigures, OUTSTANDING, OWN_PID, OWN_REASON, SERVED, STATE, STATE_JOINING, STATE_READY,
    STATE_RETIRING, STATE_SPARE, STREAMS, TUNNELS, URL_BYTES, URL_WORDS, WORKER_WORDS, WORKERS,
};
use super::reason::EndReason;
use crate::ffi::monotonic_us;

/// A daemon process's slot (no-op when the figures are off or it has no slot).
#[derive(Clone, Default)]
pub(crate) struct ProcessFigures {
    group: Option<Arc<GroupFigures>>,
    slot: usize,
}

impl ProcessFigures {
    pub(crate) fn new(group: Option<Arc<GroupFigures>>, slot: Option<usize>) -> ProcessFigures {
        match slot {
            Some(slot) => ProcessFigures { group, slot },
            None => ProcessFigures::default(),
        }
    }

    fn words(&self) -> &[AtomicU64] {
        let Some(group) = &self.group else {
            return &[];
        };
        let size = group.slot_words();
        group
            .process_words()
            .get(self.slot * size..(self.slot + 1) * size)
            .unwrap_or(&[])
    }

    fn store(&self, word: usize, value: u64) {
        if let Some(w) = self.words().get(word) {
            w.store(value, Ordering::Relaxed);
        }
    }

    /// The process has started its applications and serves.
    pub(crate) fn serving(&self) {
        self.store(OWN_PID, u64::from(std::process::id()));
        self.store(STATE, STATE_READY);
    }

    /// An elastic group's process waits as a spare.
    pub(crate) fn spare(&self) {
        self.store(OWN_PID, u64::from(std::process::id()));
        self.store(STATE, STATE_SPARE);
    }

    /// The process is to serve: from now on the group's other processes count it as serving.
    pub(crate) fn joining(&self) {
        self.store(OWN_PID, u64::from(std::process::id()));
        self.store(STATE, STATE_JOINING);
    }

    /// How the group's serving processes are loaded, as its processes wrote it: for an
    /// elastic group's decisions, which concern only its own processes.
    pub(crate) fn group_load(&self) -> GroupLoad {
        let Some(group) = &self.group else {
            return GroupLoad::default();
        };
        let size = group.slot_words();
        let mut load = GroupLoad {
            threads_shown: group.workers,
            ..GroupLoad::default()
        };
        for own in group.process_words().chunks_exact(size) {
            if !matches!(
                own[STATE].load(Ordering::Acquire),
                STATE_READY | STATE_JOINING
            ) {
                continue;
            }
            load.serving += 1;
            load.busy += busy_threads(own);
        }
        load
    }

    /// Whether every other thread of this process runs a request while another serving
    /// process of the group has a thread free: then a connection coming free here is better
    /// closed, so that the Apache child's next request connects afresh, where there is room
    /// (connections stay with the process that accepted them).
    pub(crate) fn others_have_room(&self) -> bool {
        let Some(group) = &self.group else {
            return false;
        };
        let mine = self.words();
        if mine.len() < WORKERS || busy_threads(mine) + 1 < group.workers {
            return false;
        }
        let size = group.slot_words();
        group
            .process_words()
            .chunks_exact(size)
            .enumerate()
            .filter(|&(slot, own)| {
                slot != self.slot && own[STATE].load(Ordering::Acquire) == STATE_READY
            })
            .any(|(_, own)| busy_threads(own) < group.workers)
    }

    /// Leaves the serving processes if at least `min` others serve: whether it did.
    pub(crate) fn leave_if_others_serve(&self, min: usize) -> bool {
        self.store(STATE, STATE_RETIRING);
        if self.group_load().serving >= min {
            return true;
        }
        // Another left at the same moment: this one stays.
        self.store(STATE, STATE_READY);
        false
    }

    /// The process retires (or fails) for `reason`.
    pub(crate) fn ending(&self, reason: EndReason) {
        self.store(OWN_PID, u64::from(std::process::id()));
        self.store(OWN_REASON, reason as u64);
        self.store(STATE, STATE_RETIRING);
    }

    pub(crate) fn served(&self, total: u64) {
        self.store(SERVED, total);
    }

    /// Requests taken by workers or waiting on the event loop.
    pub(crate) fn outstanding(&self, now: usize) {
        self.store(OUTSTANDING, now as u64);
    }

    /// Responses waiting on the event loop for their body or for room to write.
    pub(crate) fn streams(&self, now: usize) {
        self.store(STREAMS, now as u64);
    }

    /// Upgraded connections relayed now.
    pub(crate) fn tunnels(&self, now: usize) {
        self.store(TUNNELS, now as u64);
    }

    /// Worker `index` runs a request for `url` until the returned guard drops.
    pub(crate) fn running(&self, index: usize, url: &[u8]) -> Running<'_> {
        let start = WORKERS + index * WORKER_WORDS;
        let Some(worker) = self.words().get(start..start + WORKER_WORDS) else {
            return Running(None);
        };
        // The time goes last, so a reader that sees it sees this URL (or, racing the next
        // request, a URL it then checks the time again for).
        worker[0].store(0, Ordering::Release);
        let mut bytes = [0u8; URL_BYTES];
        let len = url.len().min(URL_BYTES);
        bytes[..len].copy_from_slice(&url[..len]);
        for (word, piece) in worker[1..=URL_WORDS].iter().zip(bytes.chunks_exact(8)) {
            let piece: [u8; 8] = piece.try_into().unwrap_or_default();
            word.store(u64::from_le_bytes(piece), Ordering::Relaxed);
        }
        worker[0].store(monotonic_us().max(1), Ordering::Release);
        Running(Some(&worker[0]))
    }
}

/// How many threads of the process whose slot is `own` run a request now.
fn busy_threads(own: &[AtomicU64]) -> usize {
    own[WORKERS..]
        .chunks_exact(WORKER_WORDS)
        .filter(|worker| worker[0].load(Ordering::Acquire) != 0)
        .count()
}

/// An elastic group's serving processes and how busy their threads are.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct GroupLoad {
    /// Processes serving or starting to.
    pub(crate) serving: usize,
    /// Their threads running a request.
    pub(crate) busy: usize,
    /// Threads per process whose requests are shown (the group's threads, at most 64).
    pub(crate) threads_shown: usize,
}

impl GroupLoad {
    /// Whether every serving thread runs a request.
    pub(crate) fn all_busy(&self) -> bool {
        self.serving > 0 && self.busy >= self.serving * self.threads_shown
    }
}

/// Ends a worker's request.
pub(crate) struct Running<'f>(Option<&'f AtomicU64>);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if let Some(since) = self.0 {
            since.store(0, Ordering::Release);
        }
    }
}
