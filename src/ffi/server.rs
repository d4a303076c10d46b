//! `server_rec`: the main server and each virtual host.

use std::ffi::c_void;
use std::marker::PhantomData;
use std::ptr::NonNull;

use super::ApacheLevel;
use super::module::module_index;
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
            let vector = self.record().module_config as *mut *mut c_void;
            let index = usize::try_from(module_index()).ok()?;
            let entry = *vector.add(index);
            (!entry.is_null()).then(|| &*entry.cast::<T>())
        }
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
