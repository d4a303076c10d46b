//! When a daemon process retires so that a fresh one replaces it, and what the event loop and
//! the workers record to decide it.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use super::apps::DaemonApps;
use crate::daemon::os::{RETIRE_REQUESTED, STOP_REQUESTED, cpu_time, resident_bytes};
use crate::figures::{EndReason, ProcessFigures};

/// When a daemon process retires so that a fresh one replaces it.
#[derive(Clone, Default)]
pub(crate) struct Recycle {
    pub(crate) maximum_requests: Option<u64>,
    pub(crate) inactivity_timeout: Option<Duration>,
    /// How long requests still running may take once retiring has begun.
    pub(crate) graceful_timeout: Duration,
    /// The same when Apache stops.
    pub(crate) shutdown_timeout: Duration,
    pub(crate) restart_interval: Option<Duration>,
    pub(crate) restart_file: Option<PathBuf>,
    /// Resident memory, in bytes.
    pub(crate) memory_limit: Option<u64>,
    pub(crate) cpu_time_limit: Option<Duration>,
    /// An elastic group's MIN (see `daemon::elastic`): beyond it, a process with no request
    /// for `idle_timeout` retires.
    pub(crate) elastic_min: Option<usize>,
    pub(crate) idle_timeout: Duration,
}

/// How often the limits that cost a system call or a file read are looked at.
const LIMITS_LOOKED_AT: Duration = Duration::from_secs(1);

/// What this process's limits are compared with, from when it began serving.
pub(super) struct Watched {
    next_look: Instant,
    /// The restart-file's modification time then (`None`: there was no such file).
    restart_file_was: Option<SystemTime>,
    /// Resident memory then: a memory-limit below it cannot be met by a fresh process, so it
    /// is not enforced (else every replacement would retire at once, in a loop).
    memory_at_start: u64,
    memory_limit_unmet: bool,
    /// CPU time used then (starting the applications): cpu-time-limit counts what serving
    /// used, so that a slow start does not retire every replacement at once.
    cpu_at_start: Duration,
    /// Requests this process serves past maximum-requests (see `jitter`).
    maximum_requests_jitter: u64,
}

impl Watched {
    pub(super) fn new(recycle: &Recycle) -> Watched {
        Watched {
            next_look: Instant::now(),
            restart_file_was: recycle.restart_file.as_deref().and_then(modified),
            // Read only for a limit that needs it.
            memory_at_start: recycle
                .memory_limit
                .and_then(|_| resident_bytes())
                .unwrap_or(0),
            memory_limit_unmet: false,
            cpu_at_start: recycle
                .cpu_time_limit
                .and_then(|_| cpu_time())
                .unwrap_or_default(),
            maximum_requests_jitter: recycle
                .maximum_requests
                .map_or(0, |max| jitter(max, u64::from(std::process::id()))),
        }
    }
}

/// Up to a tenth of `max` more requests, different from process to process (by `seed`), so
/// that processes started together do not all reach maximum-requests together.
fn jitter(max: u64, seed: u64) -> u64 {
    // A multiplicative hash of the seed spreads neighbouring pids over the range.
    let spread = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
    spread % (max / 10 + 1)
}

fn modified(path: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

const MIB: u64 = 1 << 20;

/// A limit of `recycle` this process has passed, looked at once a second.
fn past_a_limit(
    recycle: &Recycle,
    watched: &mut Watched,
    epoch: Instant,
) -> Option<(EndReason, String)> {
    let now = Instant::now();
    if now < watched.next_look {
        return None;
    }
    watched.next_look = now + LIMITS_LOOKED_AT;
    if let Some(interval) = recycle.restart_interval {
        if epoch.elapsed() >= interval {
            return Some((
                EndReason::RestartInterval,
                format!(
                    "it ran for {} s (restart-interval={})",
                    epoch.elapsed().as_secs(),
                    interval.as_secs()
                ),
            ));
        }
    }
    if let Some(path) = &recycle.restart_file {
        let now = modified(path);
        if now.is_some() && now != watched.restart_file_was {
            return Some((
                EndReason::RestartFile,
                format!("its restart-file {} changed", path.display()),
            ));
        }
    }
    if let (Some(limit), false) = (recycle.memory_limit, watched.memory_limit_unmet) {
        let resident = resident_bytes().unwrap_or(0);
        if resident > limit && watched.memory_at_start >= limit {
            watched.memory_limit_unmet = true;
            log::error!(
                "daemon process {}: memory-limit={} MiB is below the {} MiB it used when it began serving, so it is not enforced; raise it",
                std::process::id(),
                limit / MIB,
                watched.memory_at_start / MIB
            );
        } else if resident > limit {
            return Some((
                EndReason::MemoryLimit,
                format!(
                    "its resident memory, {} MiB, passed memory-limit={} MiB",
                    resident / MIB,
                    limit / MIB
                ),
            ));
        }
    }
    if let (Some(limit), Some(used)) = (recycle.cpu_time_limit, cpu_time()) {
        let used = used.saturating_sub(watched.cpu_at_start);
        if used >= limit {
            return Some((
                EndReason::CpuTimeLimit,
                format!(
                    "it used {} s of CPU time serving (cpu-time-limit={})",
                    used.as_secs(),
                    limit.as_secs()
                ),
            ));
        }
    }
    None
}

/// What the event loop and the workers record.
#[derive(Default)]
pub(super) struct Activity {
    pub(super) served: AtomicU64,
    /// Connections handed to workers or holding a waiting response, not yet given back or
    /// closed.
    pub(super) outstanding: AtomicUsize,
    /// Upgraded connections relayed now, or reserved by a worker asking an application.
    pub(super) tunnels: AtomicUsize,
    /// When the last request ended, in milliseconds since the server started.
    pub(super) last_request_ms: AtomicU64,
    /// For each worker, while it runs application code: when that call passes its limit
    /// (milliseconds since the server started, plus one); else 0.
    pub(super) app_deadline_ms: Vec<AtomicU64>,
    /// For each worker, the limit of the call it runs (for the message when it is stuck).
    pub(super) app_limit_ms: Vec<AtomicU64>,
}

/// A call into application code that has not returned past its limit.
pub(super) struct Stuck {
    pub(super) limit: Duration,
    pub(super) past: Duration,
}

/// How long a call into application code has run past its limit, if more than a second
/// past it (so the Apache child's 504 goes out first): its thread cannot be freed from outside,
/// so the process must go.
pub(super) fn stuck_call(activity: &Activity, epoch: Instant) -> Option<Stuck> {
    let now = epoch.elapsed().as_millis() as u64 + 1;
    let (worker, past) = activity
        .app_deadline_ms
        .iter()
        .map(|deadline| deadline.load(Ordering::Acquire))
        .enumerate()
        .filter(|&(_, deadline)| deadline != 0)
        .map(|(worker, deadline)| (worker, Duration::from_millis(now.saturating_sub(deadline))))
        .max_by_key(|&(_, past)| past)?;
    let limit = Duration::from_millis(activity.app_limit_ms[worker].load(Ordering::Acquire));
    (past > Duration::from_secs(1)).then_some(Stuck { limit, past })
}

pub(super) fn reason_to_retire(
    recycle: &Recycle,
    activity: &Activity,
    apps: &DaemonApps,
    epoch: Instant,
    watched: &mut Watched,
    figures: &ProcessFigures,
) -> Option<(EndReason, String)> {
    if STOP_REQUESTED.load(Ordering::Acquire) {
        return Some((EndReason::Stopping, "Apache is stopping".to_owned()));
    }
    if RETIRE_REQUESTED.load(Ordering::Acquire) {
        return Some((
            EndReason::GracefulRestart,
            "Apache is restarting; the next generation's processes take over".to_owned(),
        ));
    }
    let served = activity.served.load(Ordering::Acquire);
    if let Some(max) = recycle.maximum_requests {
        if served >= max + watched.maximum_requests_jitter {
            return Some((
                EndReason::MaximumRequests,
                format!(
                    "it served {served} requests (maximum-requests={max}) with {} more of its own jitter",
                    watched.maximum_requests_jitter
                ),
            ));
        }
    }
    if let Some(limit) = recycle.inactivity_timeout {
        let last = Duration::from_millis(activity.last_request_ms.load(Ordering::Acquire));
        if activity.outstanding.load(Ordering::Acquire) == 0
            && epoch.elapsed().saturating_sub(last) > limit
        {
            return Some((
                EndReason::Inactivity,
                format!("no request for {} s (inactivity-timeout)", limit.as_secs()),
            ));
        }
    }
    if let Some(min) = recycle.elastic_min {
        let last = Duration::from_millis(activity.last_request_ms.load(Ordering::Acquire));
        if activity.outstanding.load(Ordering::Acquire) == 0
            && epoch.elapsed().saturating_sub(last) > recycle.idle_timeout
            && figures.leave_if_others_serve(min)
        {
            return Some((
                EndReason::IdleTimeout,
                format!(
                    "no request for {} s, and {min} or more other processes of its elastic group serve (idle-timeout)",
                    recycle.idle_timeout.as_secs()
                ),
            ));
        }
    }
    if let Some(path) = apps.replaced_library() {
        return Some((
            EndReason::LibraryReplaced,
            format!("its application library {} was replaced", path.display()),
        ));
    }
    past_a_limit(recycle, watched, epoch)
}

#[cfg(test)]
mod tests {
    use super::jitter;

    #[test]
    fn maximum_requests_jitter_stays_within_a_tenth_and_differs_between_processes() {
        let picks: Vec<u64> = (1000..1100).map(|pid| jitter(400, pid)).collect();
        assert!(picks.iter().all(|&j| j <= 40), "{picks:?}");
        let distinct: std::collections::BTreeSet<_> = picks.iter().collect();
        assert!(distinct.len() > 20, "{picks:?}");
        // Small limits stay exact.
        assert!((1000..1100).all(|pid| jitter(5, pid) == 0));
    }
}
