//! This module's index in Apache's configuration vectors: read from the module record Apache
//! loaded, as registered when Apache asked for the hooks. The one place that knows it, so
//! that the wrappers need nothing of the module itself.

use std::ffi::{c_int, c_void};
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

use super::sys;

/// The record Apache registered the hooks of (set in `register_hooks`, after Apache gave it
/// its index).
static REGISTERED: AtomicPtr<sys::module> = AtomicPtr::new(ptr::null_mut());

/// Records the module record Apache has just given its index (in `register_hooks`).
pub(super) fn register(record: *mut sys::module) {
    REGISTERED.store(record, Ordering::Release);
}

/// This module's index in Apache's configuration vectors (it changes on every reload), or -1
/// before Apache has loaded it.
pub(super) fn module_index() -> c_int {
    let record = REGISTERED.load(Ordering::Acquire);
    if record.is_null() {
        return -1;
    }
    // SAFETY: the record is a static; a plain read of a field Apache set while loading it.
    unsafe { ptr::read_volatile(&raw const (*record).module_index) }
}

/// A pointer from this module's slot of a configuration vector.
///
/// # Safety
/// `vector` must be one of Apache's configuration vectors (`module_config`, `per_dir_config`,
/// `request_config`).
pub(super) unsafe fn config_slot(vector: *mut sys::ap_conf_vector_t) -> Option<*mut *mut c_void> {
    let index = usize::try_from(module_index()).ok()?;
    // SAFETY: every vector has a slot per loaded module.
    Some(unsafe { vector.cast::<*mut c_void>().add(index) })
}
