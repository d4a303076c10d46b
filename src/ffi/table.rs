//! APR tables (`headers_in`, `subprocess_env`, ...): case-insensitive, ordered, pool-owned.

use std::ffi::{CStr, c_char};
use std::marker::PhantomData;

use super::sys;

#[derive(Clone, Copy)]
pub(crate) struct Table<'p> {
    raw: *mut sys::apr_table_t,
    _life: PhantomData<&'p sys::apr_table_t>,
}

/// Header and variable names longer than this are looked up through a heap copy.
const NAME_ON_STACK: usize = 128;

impl<'p> Table<'p> {
    /// # Safety
    /// `raw` must be a live table whose entries live for `'p`.
    pub(crate) unsafe fn from_raw(raw: *mut sys::apr_table_t) -> Table<'p> {
        Table {
            raw,
            _life: PhantomData,
        }
    }

    /// The first value stored under `name` (case-insensitive).
    pub(crate) fn get(self, name: &[u8]) -> Option<&'p [u8]> {
        if name.contains(&0) {
            return None;
        }
        let lookup = |c_name: *const c_char| {
            // SAFETY: `c_name` is NUL-terminated; values live in the table's pool for 'p.
            unsafe {
                let value = sys::apr_table_get(self.raw, c_name);
                (!value.is_null()).then(|| CStr::from_ptr(value).to_bytes())
            }
        };
        if name.len() < NAME_ON_STACK {
            let mut buf = [0u8; NAME_ON_STACK];
            buf[..name.len()].copy_from_slice(name);
            lookup(buf.as_ptr().cast())
        } else {
            let mut owned = name.to_vec();
            owned.push(0);
            lookup(owned.as_ptr().cast())
        }
    }

    /// Every entry, in order.
    pub(crate) fn entries(self) -> impl Iterator<Item = (&'p [u8], &'p [u8])> {
        let mut count = 0;
        // SAFETY: a live table; the entries array lives in its pool.
        let entries = unsafe { sys::rustapp_shim_table_entries(self.raw, &mut count) };
        let slice: &'p [sys::apr_table_entry_t] = if entries.is_null() || count <= 0 {
            &[]
        } else {
            // SAFETY: the shim returns the table's `count` entries.
            unsafe { std::slice::from_raw_parts(entries, count as usize) }
        };
        slice.iter().filter_map(|entry| {
            if entry.key.is_null() || entry.val.is_null() {
                return None;
            }
            // SAFETY: non-null entries are NUL-terminated pool strings.
            unsafe {
                Some((
                    CStr::from_ptr(entry.key).to_bytes(),
                    CStr::from_ptr(entry.val).to_bytes(),
                ))
            }
        })
    }

    /// Whether the table has no entries.
    pub(crate) fn is_empty(self) -> bool {
        self.entries().next().is_none()
    }

    /// Adds an entry without copying: both strings must live as long as the table's pool.
    pub(crate) fn add(self, name: &'p CStr, value: &'p CStr) {
        // SAFETY: both strings outlive the table (pool strings of the same request).
        unsafe { sys::apr_table_addn(self.raw, name.as_ptr(), value.as_ptr()) }
    }
}
