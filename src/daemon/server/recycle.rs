//! When a daemon process retires so that a fresh one replaces it, and what the event loop and
//! the workers record to decide it.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::apps::DaemonApps;
use crate::daemon::os::{RETIRE_REQUESTED, STOP_REQUESTED};

/// When a daemon process retires so that a fresh one replaces it.
#[derive(Clone, Default)]
pub(crate) struct Recycle {
    pub(crate) maximum_requests: Option<u64>,
    pub(crate) inactivity_timeout: Option<Duration>,
    /// How long requests still running may take once retiring has begun.
    pub(crate) graceful_timeout: Duration,
    /// The same when Apache stops.
    pub(crate) shutdown_timeout: Duration,
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
) -> Option<String> {
    if STOP_REQUESTED.load(Ordering::Acquire) {
        return Some("Apache is stopping".to_owned());
    }
    if RETIRE_REQUESTED.load(Ordering::Acquire) {
        return Some("Apache is restarting; the next generation's processes take over".to_owned());
    }
    let served = activity.served.load(Ordering::Acquire);
    if let Some(max) = recycle.maximum_requests {
        if served >= max {
            return Some(format!(
                "it served {served} requests (maximum-requests={max})"
            ));
        }
    }
    if let Some(limit) = recycle.inactivity_timeout {
        let last = Duration::from_millis(activity.last_request_ms.load(Ordering::Acquire));
        if activity.outstanding.load(Ordering::Acquire) == 0
            && epoch.elapsed().saturating_sub(last) > limit
        {
            return Some(format!(
                "no request for {} s (inactivity-timeout)",
                limit.as_secs()
            ));
        }
    }
    apps.replaced_library()
        .map(|path| format!("its application library {} was replaced", path.display()))
}
