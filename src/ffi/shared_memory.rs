//! Memory shared by Apache's parent and every process it forks afterwards: a run of 64-bit
//! words, read and written only as atomics, so that no code above sees a raw pointer.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// An anonymous shared mapping of `len` words. Processes forked after it was made share its
/// pages; it lives until the process ends, or until [`SharedWords::give_up`].
pub(crate) struct SharedWords {
    start: NonNull<AtomicU64>,
    /// Words reachable; 0 once given up (the pages are then gone from this process).
    len: AtomicUsize,
    mapped_len: usize,
}

// SAFETY: the words are atomics; the mapping itself is only removed by `give_up`, which makes
// it unreachable first.
unsafe impl Send for SharedWords {}
unsafe impl Sync for SharedWords {}

impl SharedWords {
    /// Maps `len` zeroed words, shared with processes forked from now on.
    pub(crate) fn new(len: usize) -> std::io::Result<SharedWords> {
        let bytes = len.max(1) * std::mem::size_of::<AtomicU64>();
        // SAFETY: a new anonymous mapping; no existing memory is touched.
        let start = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if start == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let start = NonNull::new(start.cast::<AtomicU64>())
            .ok_or_else(|| std::io::Error::other("mmap returned null"))?;
        Ok(SharedWords {
            start,
            len: AtomicUsize::new(len),
            mapped_len: len.max(1),
        })
    }

    /// The words; empty once given up.
    pub(crate) fn words(&self) -> &[AtomicU64] {
        let len = self.len.load(Ordering::Acquire);
        // SAFETY: `len` words from `start` stay mapped until `give_up`, which sets `len` to 0
        // first and is only called while no other thread exists (see there).
        unsafe { std::slice::from_raw_parts(self.start.as_ptr(), len) }
    }

    /// Removes the pages from this process (a daemon drops what other processes write, so
    /// that its application cannot change it). Call only in a process that has no other
    /// thread yet, such as one just forked: nothing may hold a slice of the words.
    pub(crate) fn give_up(&self) {
        if self.len.swap(0, Ordering::AcqRel) == 0 {
            return;
        }
        let bytes = self.mapped_len * std::mem::size_of::<AtomicU64>();
        // SAFETY: the mapping made in `new`, no longer reachable through `words`.
        unsafe {
            libc::munmap(self.start.as_ptr().cast(), bytes);
        }
    }
}

impl Drop for SharedWords {
    fn drop(&mut self) {
        self.give_up();
    }
}

/// The machine's monotonic clock (`CLOCK_MONOTONIC`, the same in every process) in
/// microseconds, so that one process can tell how long ago another noted a time; 0 when
/// unknown.
pub(crate) fn monotonic_us() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes the current time into `now`.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) } != 0 {
        return 0;
    }
    u64::try_from(now.tv_sec).unwrap_or(0) * 1_000_000
        + u64::try_from(now.tv_nsec).unwrap_or(0) / 1000
}

impl SharedWords {
    /// Where the words are mapped, for [`unmap_shared_memory_but`].
    fn address_range(&self) -> std::ops::Range<usize> {
        let start = self.start.as_ptr() as usize;
        start..start + self.mapped_len * std::mem::size_of::<AtomicU64>()
    }
}

/// In a daemon just forked from Apache's parent (no other thread yet): removes every writable
/// shared mapping it inherited but `keep` — Apache's scoreboard (which Apache's parent
/// trusts, down to the pids it signals), shared caches of other modules, and figures that are
/// not this process's to write — so that its application cannot change them. Returns how many
/// were removed.
pub(crate) fn unmap_shared_memory_but(keep: Option<&SharedWords>) -> std::io::Result<usize> {
    let kept = keep.map(SharedWords::address_range);
    let maps = std::fs::read_to_string("/proc/self/maps")?;
    let mut removed = 0;
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
            continue;
        };
        if !(perms.starts_with("rw") && perms.ends_with('s')) {
            continue;
        }
        let Some((start, end)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (
            usize::from_str_radix(start, 16),
            usize::from_str_radix(end, 16),
        ) else {
            continue;
        };
        if kept
            .as_ref()
            .is_some_and(|k| k.start < end && start < k.end)
        {
            continue;
        }
        // SAFETY: a shared mapping inherited from Apache's parent that nothing in this
        // process uses: the daemon runs none of Apache's request processing, and its figures
        // other than `keep` were given up before this.
        if unsafe { libc::munmap(start as *mut libc::c_void, end - start) } == 0 {
            removed += 1;
        }
    }
    Ok(removed)
}
