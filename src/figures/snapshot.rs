//! The figures read at one moment, for a page or a scrape. What daemons wrote is treated as
//! untrusted: only numbers are taken, each clamped to what it can be, and a process slot's own
//! figures count only when the pid in it is the one its supervisor started there.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::alias::{self, AliasFigures};
use super::group::{self as layout, GroupFigures, MOST_OPEN};
use super::reason::EndReason;
use crate::ffi::monotonic_us;

/// How a group is configured, from the configuration (not from shared memory).
#[derive(Clone, Copy)]
pub(crate) struct GroupShape {
    pub(crate) processes: u32,
    pub(crate) threads: u32,
}

pub(crate) struct Snapshot {
    pub(crate) groups: Vec<GroupSnapshot>,
    pub(crate) aliases: Vec<AliasSnapshot>,
}

pub(crate) struct GroupSnapshot {
    pub(crate) name: String,
    pub(crate) shape: GroupShape,
    /// Requests Apache's children sent the group, and have not finished.
    pub(crate) requests: u64,
    pub(crate) in_flight: u64,
    /// Of those in flight, the ones no process has taken yet.
    pub(crate) waiting: u64,
    /// Processes serving now (of an elastic group, the ones not waiting as spares).
    pub(crate) serving: u64,
    pub(crate) busy_threads: u64,
    pub(crate) streams: u64,
    pub(crate) tunnels: u64,
    /// 502, 503 and 504 answered on its behalf.
    pub(crate) answered: [(u16, u64); 3],
    /// Ends by reason, signal and exit status, with a count above 0.
    pub(crate) ends: Vec<(EndReason, u64)>,
    pub(crate) signals: Vec<(u64, u64)>,
    pub(crate) exit_codes: Vec<(u64, u64)>,
    pub(crate) last_end: Option<LastEnd>,
    pub(crate) processes: Vec<ProcessSnapshot>,
}

pub(crate) struct LastEnd {
    pub(crate) at_unix_ms: u64,
    pub(crate) pid: u64,
    pub(crate) reason: EndReason,
    /// The signal or exit status.
    pub(crate) detail: u64,
}

impl std::fmt::Display for LastEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "process {} ended: {}", self.pid, self.reason.name())?;
        match self.reason {
            EndReason::Signal => write!(f, " {}", self.detail),
            EndReason::ExitCode => write!(f, " {}", self.detail),
            _ => Ok(()),
        }
    }
}

pub(crate) struct ProcessSnapshot {
    pub(crate) pid: u64,
    pub(crate) state: &'static str,
    pub(crate) uptime: Duration,
    pub(crate) served: u64,
    pub(crate) in_flight: u64,
    pub(crate) busy_threads: u64,
    pub(crate) streams: u64,
    pub(crate) tunnels: u64,
    /// The request running longest on one of its threads: for how long, and its URL.
    pub(crate) longest: Option<(Duration, String)>,
    pub(crate) resident_bytes: Option<u64>,
    pub(crate) cpu_time: Option<Duration>,
}

pub(crate) struct AliasSnapshot {
    pub(crate) mount: String,
    pub(crate) library: String,
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    pub(crate) in_flight: u64,
    pub(crate) sum: Duration,
    /// Requests by bucket (not cumulative), the last one past every bound.
    pub(crate) buckets: Vec<u64>,
}

fn load(words: &[AtomicU64], word: usize) -> u64 {
    words.get(word).map_or(0, |w| w.load(Ordering::Acquire))
}

impl Snapshot {
    /// Reads `groups` (with their configured shape) and `aliases`.
    pub(crate) fn read<'b>(
        groups: impl Iterator<Item = (&'b Arc<GroupFigures>, GroupShape)>,
        aliases: impl Iterator<Item = &'b Arc<AliasFigures>>,
    ) -> Snapshot {
        Snapshot {
            groups: groups.map(|(g, shape)| read_group(g, shape)).collect(),
            aliases: aliases.map(|a| read_alias(a)).collect(),
        }
    }
}

fn read_group(group: &GroupFigures, shape: GroupShape) -> GroupSnapshot {
    let apache = group.apache_words();
    let requests = load(apache, layout::REQUESTS);
    // Counted up and down by many threads with relaxed adds: never below 0 when shown.
    let in_flight = (load(apache, layout::IN_FLIGHT) as i64).max(0) as u64;
    let processes: Vec<ProcessSnapshot> = (0..group.slots)
        .filter_map(|slot| read_process(group, slot, shape, requests))
        .collect();
    let ends = EndReason::ALL
        .into_iter()
        .map(|r| (r, load(apache, layout::ENDS + r as usize)))
        .filter(|&(_, n)| n > 0)
        .collect();
    let counted = |from: usize, len: usize| {
        (0..len)
            .map(|n| (n as u64, load(apache, from + n)))
            .filter(|&(_, count)| count > 0)
            .collect()
    };
    let last_end = (load(apache, layout::LAST_END_AT_MS) > 0)
        .then(|| {
            Some(LastEnd {
                at_unix_ms: load(apache, layout::LAST_END_AT_MS),
                pid: load(apache, layout::LAST_END_PID),
                reason: EndReason::from_code(load(apache, layout::LAST_END_REASON))?,
                detail: load(apache, layout::LAST_END_DETAIL),
            })
        })
        .flatten();
    GroupSnapshot {
        name: group.name.clone(),
        shape,
        requests,
        in_flight,
        waiting: group.waiting(),
        serving: processes.iter().filter(|p| p.state == "ready").count() as u64,
        busy_threads: processes.iter().map(|p| p.busy_threads).sum(),
        streams: processes.iter().map(|p| p.streams).sum(),
        tunnels: processes.iter().map(|p| p.tunnels).sum(),
        answered: [
            (502, load(apache, layout::ANSWERED_502)),
            (503, load(apache, layout::ANSWERED_503)),
            (504, load(apache, layout::ANSWERED_504)),
        ],
        ends,
        signals: counted(layout::SIGNALS, layout::MAX_SIGNAL + 1),
        exit_codes: counted(layout::EXIT_CODES, 256),
        last_end,
        processes,
    }
}

/// The process in `slot`, if one was started there.
fn read_process(
    group: &GroupFigures,
    slot: usize,
    shape: GroupShape,
    group_requests: u64,
) -> Option<ProcessSnapshot> {
    let apache = group.apache_words();
    let pid = load(apache, layout::SLOT_PIDS + 2 * slot);
    if pid == 0 || pid > i32::MAX as u64 {
        return None;
    }
    let started_ms = load(apache, layout::SLOT_PIDS + 2 * slot + 1);
    let uptime = Duration::from_millis(super::group::unix_ms().saturating_sub(started_ms));
    let size = group.slot_words();
    let own = group
        .process_words()
        .get(slot * size..(slot + 1) * size)
        .filter(|own| load(own, layout::OWN_PID) == pid);
    let (resident_bytes, cpu_time) = from_proc(pid);
    let mut process = ProcessSnapshot {
        pid,
        state: "starting",
        uptime,
        served: 0,
        in_flight: 0,
        busy_threads: 0,
        streams: 0,
        tunnels: 0,
        longest: None,
        resident_bytes,
        cpu_time,
    };
    let Some(own) = own else {
        return Some(process);
    };
    process.state = match load(own, layout::STATE) {
        layout::STATE_READY => "ready",
        layout::STATE_RETIRING => "retiring",
        layout::STATE_SPARE => "spare",
        _ => "starting",
    };
    process.served = load(own, layout::SERVED).min(group_requests);
    process.in_flight = load(own, layout::OUTSTANDING).min(MOST_OPEN);
    let running = running_requests(own, group.workers);
    process.busy_threads = (running.len() as u64).min(u64::from(shape.threads));
    process.longest = running.into_iter().max_by_key(|(age, _)| *age);
    process.streams = load(own, layout::STREAMS).min(MOST_OPEN);
    process.tunnels = load(own, layout::TUNNELS).min(MOST_OPEN);
    Some(process)
}

/// The requests its workers run now (how long so far, and the URL), from what the process
/// wrote.
fn running_requests(own: &[AtomicU64], workers: usize) -> Vec<(Duration, String)> {
    let now = monotonic_us();
    (0..workers)
        .filter_map(|worker| {
            let start = layout::WORKERS + worker * layout::WORKER_WORDS;
            let words = own.get(start..start + layout::WORKER_WORDS)?;
            let since = words[0].load(Ordering::Acquire);
            if since == 0 || since > now {
                return None;
            }
            let mut url = Vec::with_capacity(layout::URL_BYTES);
            for word in &words[1..] {
                url.extend_from_slice(&word.load(Ordering::Relaxed).to_le_bytes());
            }
            // The worker moved on while this was read: not this request's URL.
            if words[0].load(Ordering::Acquire) != since {
                return None;
            }
            Some((Duration::from_micros(now - since), printable(&url)))
        })
        .collect()
}

/// Bytes a daemon wrote, as text safe in HTML and in a metrics label: printable ASCII up to
/// the first NUL, anything else as `?`.
fn printable(bytes: &[u8]) -> String {
    bytes
        .iter()
        .take_while(|&&b| b != 0)
        .map(|&b| {
            if b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'&' | b'"' | b'\\') {
                b as char
            } else {
                '?'
            }
        })
        .collect()
}

/// A process's resident memory and CPU time, as the kernel reports them (not the process).
fn from_proc(pid: u64) -> (Option<u64>, Option<Duration>) {
    let resident = resident_bytes(&pid.to_string());
    let cpu = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // Fields after the command's closing parenthesis; utime and stime are the 14th
            // and 15th of the whole line, in clock ticks (USER_HZ, 100 on Linux).
            let rest = &stat[stat.rfind(')')? + 2..];
            let fields: Vec<&str> = rest.split(' ').collect();
            let ticks: u64 =
                fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
            Some(Duration::from_millis(ticks * 10))
        });
    (resident, cpu)
}

/// The resident memory (`VmRSS`) of process `pid` (a number, or `self`), in bytes.
pub(crate) fn resident_bytes(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    Some(kib * 1024)
}

fn read_alias(figures: &AliasFigures) -> AliasSnapshot {
    let buckets: Vec<u64> = (0..=alias::BUCKET_BOUNDS_US.len())
        .map(|b| figures.total(alias::BUCKETS + b))
        .collect();
    // Read after the buckets, so that every request they count as ended is among the begun.
    let begun = figures.total(alias::BEGUN);
    let ended = buckets.iter().sum::<u64>();
    AliasSnapshot {
        mount: figures.mount.clone(),
        library: figures.library.clone(),
        requests: begun,
        errors: figures.total(alias::ERRORS),
        in_flight: begun.saturating_sub(ended),
        sum: Duration::from_micros(figures.total(alias::SUM_US)),
        buckets,
    }
}
