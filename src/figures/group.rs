//! A daemon group's figures, in two shared mappings: one Apache's parent and children write
//! (requests sent, errors answered on the group's behalf, processes started and ended), and
//! one the group's own processes write (see `process`). A daemon keeps only the second, so its
//! application cannot change what Apache counted, nor another group's figures.

use std::sync::atomic::{AtomicU64, Ordering};

use super::reason::EndReason;
use crate::ffi::SharedWords;

/// Process slots: room for a generation's processes and the previous generation's, which
/// finish their requests while the next one starts (a graceful restart).
pub(crate) fn slots_for(processes: u32) -> usize {
    2 * (processes as usize).min(MAX_PROCESSES_SHOWN)
}

/// Processes of a group shown one by one; the rest count in the group's totals only.
const MAX_PROCESSES_SHOWN: usize = 128;
/// Threads of a process whose current request is shown.
pub(crate) const MAX_WORKERS_SHOWN: usize = 64;

// What Apache writes, by word.
pub(super) const REQUESTS: usize = 0;
pub(super) const IN_FLIGHT: usize = 1;
/// 502, 503, 504 answered on the group's behalf.
pub(super) const ANSWERED_502: usize = 2;
pub(super) const ANSWERED_503: usize = 3;
pub(super) const ANSWERED_504: usize = 4;
pub(super) const LAST_END_AT_MS: usize = 5;
pub(super) const LAST_END_PID: usize = 6;
pub(super) const LAST_END_REASON: usize = 7;
/// The signal or exit status of the last end.
pub(super) const LAST_END_DETAIL: usize = 8;
/// Ends by reason code (0 to 15).
pub(super) const ENDS: usize = 16;
/// Ends by signal number (0 to 64).
pub(super) const SIGNALS: usize = 32;
pub(super) const MAX_SIGNAL: usize = 64;
/// Ends by exit status (0 to 255).
pub(super) const EXIT_CODES: usize = SIGNALS + MAX_SIGNAL + 1;
/// Per process slot: the pid its supervisor started there (0: free), and when (Unix ms).
pub(super) const SLOT_PIDS: usize = EXIT_CODES + 256;
const APACHE_WORDS_BEFORE_SLOTS: usize = SLOT_PIDS;

// What a process writes into its slot, by word.
pub(super) const OWN_PID: usize = 0;
/// 0 starting, 1 ready, 2 retiring.
pub(super) const STATE: usize = 1;
pub(super) const OWN_REASON: usize = 2;
pub(super) const SERVED: usize = 3;
pub(super) const OUTSTANDING: usize = 4;
pub(super) const STREAMS: usize = 5;
pub(super) const TUNNELS: usize = 6;
pub(super) const WORKERS: usize = 8;
/// Per worker: since when it runs a request in the application (monotonic µs, 0: idle; the
/// busy threads are the ones with a time), then the request's URL, up to `URL_BYTES`.
pub(super) const WORKER_WORDS: usize = 1 + URL_WORDS;
pub(super) const URL_WORDS: usize = 8;
pub(super) const URL_BYTES: usize = URL_WORDS * 8;

pub(crate) const STATE_READY: u64 = 1;
pub(crate) const STATE_RETIRING: u64 = 2;
/// An elastic group's process that waits, its applications not loaded, to join the serving
/// ones.
pub(crate) const STATE_SPARE: u64 = 3;
/// A process that is to serve, starting its applications.
pub(crate) const STATE_JOINING: u64 = 4;

/// Largest count a daemon may claim for anything it holds open at once.
pub(super) const MOST_OPEN: u64 = 1 << 20;

/// A starting process's slot, before its pid is known.
const RESERVED: u64 = u64::MAX;

pub(crate) struct GroupFigures {
    pub(crate) name: String,
    apache: SharedWords,
    processes: SharedWords,
    pub(crate) slots: usize,
    pub(crate) workers: usize,
}

impl GroupFigures {
    pub(super) fn new(name: &str, processes: u32, threads: u32) -> std::io::Result<GroupFigures> {
        let slots = slots_for(processes);
        let workers = (threads as usize).min(MAX_WORKERS_SHOWN);
        Ok(GroupFigures {
            name: name.to_owned(),
            apache: SharedWords::new(APACHE_WORDS_BEFORE_SLOTS + 2 * slots)?,
            processes: SharedWords::new(slots * slot_words(workers))?,
            slots,
            workers,
        })
    }

    /// Whether these figures have room for a group of this shape.
    pub(super) fn fits(&self, processes: u32, threads: u32) -> bool {
        self.slots >= slots_for(processes)
            && self.workers >= (threads as usize).min(MAX_WORKERS_SHOWN)
    }

    pub(super) fn apache_words(&self) -> &[AtomicU64] {
        self.apache.words()
    }

    pub(super) fn process_words(&self) -> &[AtomicU64] {
        self.processes.words()
    }

    pub(super) fn slot_words(&self) -> usize {
        slot_words(self.workers)
    }

    pub(super) fn shared_words(&self) -> (&SharedWords, &SharedWords) {
        (&self.apache, &self.processes)
    }

    fn add(&self, word: usize, n: u64) {
        if let Some(w) = self.apache.words().get(word) {
            w.fetch_add(n, Ordering::Relaxed);
        }
    }

    // ---- Apache's children ----

    /// An Apache child sends the group a request.
    pub(crate) fn request_sent(&self) {
        self.add(REQUESTS, 1);
        self.add(IN_FLIGHT, 1);
    }

    /// That request is over, answered with `error` if Apache answered an error for it.
    pub(crate) fn request_over(&self, error: Option<u16>) {
        if let Some(w) = self.apache.words().get(IN_FLIGHT) {
            w.fetch_sub(1, Ordering::Relaxed);
        }
        match error {
            Some(502) => self.add(ANSWERED_502, 1),
            Some(503) => self.add(ANSWERED_503, 1),
            Some(504) => self.add(ANSWERED_504, 1),
            _ => {}
        }
    }

    /// Requests sent to the group that no process has taken yet: those in flight, less what
    /// its processes hold (each process's claim counted only under the pid its supervisor
    /// started, and at most `MOST_OPEN`).
    pub(crate) fn waiting(&self) -> u64 {
        let apache = self.apache.words();
        let processes = self.processes.words();
        let in_flight = apache
            .get(IN_FLIGHT)
            .map_or(0, |w| (w.load(Ordering::Acquire) as i64).max(0) as u64);
        let size = self.slot_words();
        let held: u64 = (0..self.slots)
            .filter_map(|slot| {
                let pid = apache.get(SLOT_PIDS + 2 * slot)?.load(Ordering::Acquire);
                let own = processes.get(slot * size..(slot + 1) * size)?;
                (pid != 0 && own[OWN_PID].load(Ordering::Acquire) == pid)
                    .then(|| own[OUTSTANDING].load(Ordering::Acquire).min(MOST_OPEN))
            })
            .sum();
        in_flight.saturating_sub(held)
    }

    // ---- Apache's parent ----

    /// A free process slot, reserved for a process about to start (its figures cleared), or
    /// `None` when every slot is taken (the process then counts in the totals only).
    pub(crate) fn reserve_slot(&self) -> Option<usize> {
        let apache = self.apache.words();
        let slot = (0..self.slots).find(|&slot| {
            apache
                .get(SLOT_PIDS + 2 * slot)
                .is_some_and(|pid| pid.load(Ordering::Acquire) == 0)
        })?;
        apache[SLOT_PIDS + 2 * slot].store(RESERVED, Ordering::Release);
        let size = self.slot_words();
        for word in self.processes.words().iter().skip(slot * size).take(size) {
            word.store(0, Ordering::Relaxed);
        }
        Some(slot)
    }

    /// The process in `slot` has started as `pid`.
    pub(crate) fn started(&self, slot: usize, pid: i32) {
        let apache = self.apache.words();
        if let (Some(p), Some(at)) = (
            apache.get(SLOT_PIDS + 2 * slot),
            apache.get(SLOT_PIDS + 2 * slot + 1),
        ) {
            at.store(unix_ms(), Ordering::Relaxed);
            p.store(pid as u64, Ordering::Release);
        }
    }

    /// A reserved slot whose process could not be forked.
    pub(crate) fn release(&self, slot: usize) {
        if let Some(p) = self.apache.words().get(SLOT_PIDS + 2 * slot) {
            p.store(0, Ordering::Release);
        }
    }

    /// The reason the process in `slot` gave itself for ending, if it wrote one and the slot
    /// is still its own (what a daemon writes is checked, never believed blindly).
    pub(crate) fn reported_reason(&self, slot: usize, pid: i32) -> Option<EndReason> {
        let size = self.slot_words();
        let own = self.processes.words().get(slot * size..(slot + 1) * size)?;
        if own[OWN_PID].load(Ordering::Acquire) != pid as u64 {
            return None;
        }
        EndReason::from_code(own[OWN_REASON].load(Ordering::Acquire)).filter(|r| r.is_its_own())
    }

    /// The process `pid` in `slot` (if it had one) has ended, for `reason` (`detail`: the
    /// signal or exit status); Apache stopping is not counted.
    pub(crate) fn ended(&self, slot: Option<usize>, pid: i32, reason: EndReason, detail: u64) {
        if let Some(slot) = slot {
            self.release(slot);
            // No longer one of the group's serving processes, to the others.
            let size = self.slot_words();
            if let Some(state) = self.processes.words().get(slot * size + STATE) {
                state.store(0, Ordering::Release);
            }
        }
        if reason == EndReason::Stopping {
            return;
        }
        self.add(ENDS + reason as usize, 1);
        match reason {
            EndReason::Signal => self.add(SIGNALS + (detail as usize).min(MAX_SIGNAL), 1),
            EndReason::ExitCode => self.add(EXIT_CODES + (detail as usize).min(255), 1),
            _ => {}
        }
        let apache = self.apache.words();
        if let Some(last) = apache.get(LAST_END_AT_MS..=LAST_END_DETAIL) {
            last[1].store(pid as u64, Ordering::Relaxed);
            last[2].store(reason as u64, Ordering::Relaxed);
            last[3].store(detail, Ordering::Relaxed);
            last[0].store(unix_ms(), Ordering::Release);
        }
    }
}

fn slot_words(workers: usize) -> usize {
    WORKERS + workers * WORKER_WORDS
}

pub(super) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
