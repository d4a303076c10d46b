//! An elastic group (`processes=MIN-MAX`). All MAX processes are forked, but only as many as
//! the load needs serve: the others wait as spares, their applications not loaded (so they cost
//! little memory and no start-up), and one joins when every serving thread has run a request
//! for a moment. A serving process beyond MIN with no request for the group's idle-timeout
//! retires (see `server::recycle`), and its replacement waits as a spare. The processes decide
//! from what they write in their group's figures; Apache's parent is not involved.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::os::{RETIRE_REQUESTED, STOP_REQUESTED};
use crate::figures::{EndReason, ProcessFigures};

/// How long every serving thread must have run a request before a spare joins.
const ALL_BUSY_FOR: Duration = Duration::from_millis(500);

/// How often a spare looks.
const LOOK_EVERY: Duration = Duration::from_millis(50);

/// Processes started together look one after another, by slot, so that the first MIN serve
/// and the rest see them.
const STAGGER: Duration = Duration::from_millis(30);

/// Returns when this process (in figures `slot`) is to serve: at once while fewer than `min`
/// of its group serve, else once every serving thread has been busy for `ALL_BUSY_FOR`.
/// Until then it waits as a spare. `Err` when Apache restarts or stops meanwhile.
pub(crate) fn wait_until_needed(
    figures: &ProcessFigures,
    min: usize,
    slot: usize,
) -> Result<(), EndReason> {
    std::thread::sleep(STAGGER * (slot as u32).min(32));
    let mut all_busy_since: Option<Instant> = None;
    let mut spare = false;
    loop {
        if STOP_REQUESTED.load(Ordering::Acquire) {
            return Err(EndReason::Stopping);
        }
        if RETIRE_REQUESTED.load(Ordering::Acquire) {
            return Err(EndReason::GracefulRestart);
        }
        let load = figures.group_load();
        all_busy_since = if load.all_busy() {
            Some(all_busy_since.unwrap_or_else(Instant::now))
        } else {
            None
        };
        let busy_long_enough = all_busy_since.is_some_and(|since| since.elapsed() >= ALL_BUSY_FOR);
        if load.serving < min || busy_long_enough {
            figures.joining();
            if spare {
                log::info!(
                    "daemon process {} joins its group's {} serving processes ({})",
                    std::process::id(),
                    load.serving,
                    if busy_long_enough {
                        "every thread has been busy"
                    } else {
                        "fewer than the group's minimum serve"
                    }
                );
            }
            return Ok(());
        }
        if !spare {
            figures.spare();
            spare = true;
            log::info!(
                "daemon process {} waits as a spare: its group's {} serving processes have idle threads",
                std::process::id(),
                load.serving
            );
        }
        std::thread::sleep(LOOK_EVERY);
    }
}
