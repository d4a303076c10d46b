//! Rolling retirement: the processes of a group of more than one retire one at a time, and
//! each one's replacement serves before the next may retire, so that a recycle (a new library,
//! the restart-file, maximum-requests, a limit reached by all at once) never leaves the group
//! without a ready process. Apache's own restart and stop are not rolled: the next
//! generation's processes, or none, take over.
//!
//! One lock file per group (`flock`). Apache's parent opens it once for each process it
//! starts and keeps its own copy of that descriptor, which the process inherits. A process
//! that wants to retire takes the lock first, or goes on serving and asks again a second
//! later. It never lets go: when it exits, the parent's copy of the same open file keeps the
//! lock held, and the parent hands that very descriptor to the replacement, which lets go once
//! it serves. A process that dies holding it hands it on the same way.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Mutex;

use super::os;

/// A daemon process's descriptor of its group's lock file.
pub(crate) struct RollLock(OwnedFd);

impl RollLock {
    /// In Apache's parent: a new open file for group socket `socket`'s lock, for one process.
    pub(crate) fn open(socket: &Path) -> io::Result<RollLock> {
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            // Empty, and only ever locked.
            .truncate(false)
            .mode(0o600)
            .open(lock_path(socket))?;
        Ok(RollLock(file.into()))
    }

    /// Takes the group's turn to retire, if no other process has it.
    pub(crate) fn try_take(&self) -> bool {
        os::try_lock(self.0.as_fd())
    }

    /// Gives the turn back (a replacement that serves now).
    pub(crate) fn let_go(&self) {
        os::unlock(self.0.as_fd());
    }
}

/// The lock file of the group listening on `socket`.
pub(crate) fn lock_path(socket: &Path) -> std::path::PathBuf {
    socket.with_extension("roll")
}

/// In Apache's parent: the lock descriptor of each daemon process it runs, by pid.
static KEPT: Mutex<Vec<(i32, RollLock)>> = Mutex::new(Vec::new());

/// Keeps process `pid`'s lock descriptor (its copy in the parent).
pub(crate) fn keep(pid: i32, lock: RollLock) {
    if let Ok(mut kept) = KEPT.lock() {
        kept.push((pid, lock));
    }
}

/// The lock descriptor of process `pid`, which ended: for its replacement (or to close).
pub(crate) fn take(pid: i32) -> Option<RollLock> {
    let mut kept = KEPT.lock().ok()?;
    let at = kept.iter().position(|(p, _)| *p == pid)?;
    Some(kept.swap_remove(at).1)
}

/// In a newly forked daemon: closes its copies of the other processes' descriptors (theirs to
/// take, not this one's).
pub(crate) fn close_inherited() {
    if let Ok(mut kept) = KEPT.lock() {
        kept.clear();
    }
}
