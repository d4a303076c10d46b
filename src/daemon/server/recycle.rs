//! When a daemon process retires so that a fresh one replaces it, and what the event loop and
//! the workers record to decide it.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::ServeOptions;
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

/// What the poller and the workers share.
#[derive(Default)]
pub(super) struct Activity {
    pub(super) served: AtomicU64,
    /// Connections handed to workers and not yet given back or closed.
    pub(super) outstanding: AtomicUsize,
    /// When the last request ended, in milliseconds since the server started.
    pub(super) last_request_ms: AtomicU64,
    /// For each worker, since when it has been busy (milliseconds since the server started,
    /// plus one), or 0 when idle.
    pub(super) busy_since_ms: Vec<AtomicU64>,
}

/// How long the longest-running request has run, if past `request-timeout` (plus a second, so
/// the Apache child's 504 goes out before the process ends).
pub(super) fn overdue_request(
    activity: &Activity,
    options: &ServeOptions,
    epoch: Instant,
) -> Option<Duration> {
    let now = epoch.elapsed().as_millis() as u64 + 1;
    let longest = activity
        .busy_since_ms
        .iter()
        .map(|since| since.load(Ordering::Acquire))
        .filter(|&since| since != 0)
        .map(|since| Duration::from_millis(now.saturating_sub(since)))
        .max()?;
    (longest > options.request_timeout + Duration::from_secs(1)).then_some(longest)
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
