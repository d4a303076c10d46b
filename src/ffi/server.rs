//! `server_rec`: the main server and each virtual host.

use std::marker::PhantomData;
use std::ptr::NonNull;

use super::index::{config_slot, module_index};
use super::log_level::ApacheLevel;
use super::pool::Pool;
use super::sys;

#[derive(Clone, Copy)]
pub(crate) struct Server<'s> {
    raw: NonNull<sys::server_rec>,
    _life: PhantomData<&'s sys::server_rec>,
}

// SAFETY: a server record is configuration: after start-up Apache only reads it, from any thread.
unsafe impl Send for Server<'_> {}
// SAFETY: as above.
unsafe impl Sync for Server<'_> {}

impl<'s> Server<'s> {
    /// # Safety
    /// `raw` must be a live server record for `'s`.
    pub(crate) unsafe fn from_raw(raw: *mut sys::server_rec) -> Server<'s> {
        Server {
            raw: NonNull::new(raw).expect("Apache passed a null server_rec"),
            _life: PhantomData,
        }
    }

    pub(crate) fn raw(self) -> *const sys::server_rec {
        self.raw.as_ptr()
    }

    fn record(&self) -> &'s sys::server_rec {
        // SAFETY: live for 's, per `from_raw`.
        unsafe { self.raw.as_ref() }
    }

    /// The next virtual host after this one (the main server comes first).
    pub(crate) fn next(self) -> Option<Server<'s>> {
        let next = self.record().next;
        // SAFETY: the server list lives as long as the configuration.
        (!next.is_null()).then(|| unsafe { Server::from_raw(next) })
    }

    /// This server and every virtual host after it.
    pub(crate) fn and_following(self) -> impl Iterator<Item = Server<'s>> {
        std::iter::successors(Some(self), |s| s.next())
    }

    /// This module's per-server configuration record.
    pub(crate) fn module_config<T>(self) -> Option<&'s T> {
        // SAFETY: the record stored for this module is a `T` created by our config callbacks.
        unsafe {
            let entry = *config_slot(self.record().module_config)?;
            (!entry.is_null()).then(|| &*entry.cast::<T>())
        }
    }

    /// The pool of the configuration generation this server belongs to (`pconf`): it lives
    /// until Apache reloads its configuration, in the parent and in every process it forks.
    pub(crate) fn config_pool(self) -> Pool<'s> {
        // SAFETY: every server record points at the process record, whose `pconf` lives as
        // long as this configuration.
        unsafe { Pool::from_raw((*self.record().process).pconf) }
    }

    /// The pool that lives as long as Apache's parent process, across configuration
    /// generations.
    pub(crate) fn process_pool(self) -> Pool<'static> {
        // SAFETY: every server record points at the process record, whose pool lives until
        // the process exits.
        unsafe { Pool::from_raw((*self.record().process).pool) }
    }

    /// The most verbose level this server records for this module.
    pub(crate) fn log_level(self) -> ApacheLevel {
        let log = &self.record().log;
        let index = module_index();
        let level = if index >= 0 && !log.module_levels.is_null() {
            // SAFETY: `module_levels` has an entry for every loaded module.
            let own = unsafe { *log.module_levels.add(index as usize) };
            if own >= 0 { own as i32 } else { log.level }
        } else {
            log.level
        };
        ApacheLevel(level)
    }
}
