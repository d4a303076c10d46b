//! APR pools: Rust values whose lifetime follows a pool's, and strings copied into a pool.

use std::any::TypeId;
use std::ffi::{CStr, c_char, c_void};
use std::marker::PhantomData;
use std::ptr::NonNull;

use super::entry::guard;
use super::sys;

/// A borrowed APR pool.
#[derive(Clone, Copy)]
pub(crate) struct Pool<'p> {
    raw: NonNull<sys::apr_pool_t>,
    _life: PhantomData<&'p sys::apr_pool_t>,
}

impl<'p> Pool<'p> {
    /// # Safety
    /// `raw` must be a live pool for `'p`.
    pub(crate) unsafe fn from_raw(raw: *mut sys::apr_pool_t) -> Pool<'p> {
        Pool {
            raw: NonNull::new(raw).expect("Apache passed a null pool"),
            _life: PhantomData,
        }
    }

    pub(crate) fn raw(self) -> *mut sys::apr_pool_t {
        self.raw.as_ptr()
    }

    /// Moves `value` into memory that lives as long as the pool: it is dropped when the pool is
    /// cleared or destroyed. Returns a pointer to it for Apache to hold (configuration records).
    pub(crate) fn adopt<T: 'static>(self, value: T) -> *mut T {
        let raw = Box::into_raw(Box::new(value));
        // SAFETY: `raw` stays valid until the cleanup below frees it, exactly once.
        unsafe {
            sys::apr_pool_cleanup_register(
                self.raw(),
                raw.cast::<c_void>().cast_const(),
                Some(drop_adopted::<T>),
                Some(sys::apr_pool_cleanup_null),
            );
        }
        raw
    }

    /// Runs `action` when the pool is cleared or destroyed.
    pub(crate) fn on_cleanup(self, action: impl FnOnce() + 'static) {
        let boxed: Box<dyn FnOnce()> = Box::new(action);
        let raw = self.adopt(Some(boxed));
        // SAFETY: registered after the adoption above, so (cleanups running in reverse order)
        // it runs before that box is freed.
        unsafe {
            sys::apr_pool_cleanup_register(
                self.raw(),
                raw.cast::<c_void>().cast_const(),
                Some(run_cleanup_action),
                Some(sys::apr_pool_cleanup_null),
            );
        }
    }

    /// Keeps `value` under `key` for as long as the pool lives: later [`Pool::kept`] calls
    /// with the same key and type find it (in this process, and in processes forked after).
    pub(crate) fn keep<T: Send + Sync + 'static>(self, key: &'static CStr, value: T) -> &'p T {
        let kept = self.adopt(Kept {
            type_id: TypeId::of::<T>(),
            value,
        });
        // SAFETY: the key is copied into the pool; the value lives until the pool is cleared,
        // when the userdata table goes too.
        unsafe {
            sys::apr_pool_userdata_set(kept.cast::<c_void>(), key.as_ptr(), None, self.raw());
            &(*kept).value
        }
    }

    /// What [`Pool::keep`] kept under `key`, if it is a `T`.
    pub(crate) fn kept<T: Send + Sync + 'static>(self, key: &'static CStr) -> Option<&'p T> {
        let mut data: *mut c_void = std::ptr::null_mut();
        // SAFETY: reads the pool's userdata table.
        unsafe { sys::apr_pool_userdata_get(&mut data, key.as_ptr(), self.raw()) };
        // SAFETY: only `keep` stores under our keys: a `Kept` of some type, checked here.
        let kept = unsafe { data.cast::<Kept<T>>().as_ref() }?;
        (kept.type_id == TypeId::of::<T>()).then_some(&kept.value)
    }

    /// Copies `bytes` into the pool as a NUL-terminated string.
    pub(crate) fn c_string(self, bytes: &[u8]) -> &'p CStr {
        // SAFETY: apr_pstrmemdup copies `len` bytes and appends a NUL, in pool memory.
        unsafe {
            let copy =
                sys::apr_pstrmemdup(self.raw(), bytes.as_ptr().cast::<c_char>(), bytes.len());
            CStr::from_ptr(copy)
        }
    }

    /// Copies `bytes` into the pool.
    pub(crate) fn copy(self, bytes: &[u8]) -> &'p [u8] {
        if bytes.is_empty() {
            return &[];
        }
        // SAFETY: apr_pmemdup copies `len` bytes into pool memory that lives as long as the
        // pool.
        unsafe {
            let copy = sys::apr_pmemdup(self.raw(), bytes.as_ptr().cast(), bytes.len());
            std::slice::from_raw_parts(copy.cast::<u8>(), bytes.len())
        }
    }

    /// `n` as decimal text in the pool.
    pub(crate) fn decimal(self, n: i64) -> &'p CStr {
        // SAFETY: apr_ltoa returns a pool string.
        unsafe { CStr::from_ptr(sys::apr_ltoa(self.raw(), n as std::ffi::c_long)) }
    }
}

/// A value kept under a key, with its type so that a lookup can check it.
#[repr(C)]
struct Kept<T> {
    type_id: TypeId,
    value: T,
}

type CleanupAction = Option<Box<dyn FnOnce()>>;

unsafe extern "C" fn run_cleanup_action(data: *mut c_void) -> sys::apr_status_t {
    // SAFETY: `data` is the adopted `CleanupAction` registered in `on_cleanup`.
    let slot = unsafe { &mut *data.cast::<CleanupAction>() };
    if let Some(action) = slot.take() {
        guard((), action);
    }
    sys::APR_SUCCESS as sys::apr_status_t
}

unsafe extern "C" fn drop_adopted<T>(data: *mut c_void) -> sys::apr_status_t {
    // SAFETY: registered once by `adopt` for this pointer and type.
    let value = unsafe { Box::from_raw(data.cast::<T>()) };
    guard((), move || drop(value));
    sys::APR_SUCCESS as sys::apr_status_t
}
