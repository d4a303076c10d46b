//! `cmd_parms`: the context of a configuration directive being parsed.

use std::ffi::{CStr, c_char, c_void};
use std::marker::PhantomData;
use std::ptr::{self, NonNull};

use super::entry::guard;
use super::module::module_index;
use super::pool::Pool;
use super::sys;

#[derive(Clone, Copy)]
pub(crate) struct Cmd<'c> {
    raw: NonNull<sys::cmd_parms>,
    _life: PhantomData<&'c sys::cmd_parms>,
}

impl<'c> Cmd<'c> {
    /// # Safety
    /// `raw` must be the `cmd_parms` of the directive being processed.
    pub(crate) unsafe fn from_raw(raw: *mut sys::cmd_parms) -> Cmd<'c> {
        Cmd {
            raw: NonNull::new(raw).expect("Apache passed null cmd_parms"),
            _life: PhantomData,
        }
    }

    fn parms(&self) -> &'c sys::cmd_parms {
        // SAFETY: live during the directive, per `from_raw`.
        unsafe { self.raw.as_ref() }
    }

    pub(crate) fn pool(self) -> Pool<'c> {
        // SAFETY: the configuration pool outlives directive processing.
        unsafe { Pool::from_raw(self.parms().pool) }
    }

    /// Whether the directive comes from an `.htaccess` file, read while serving a request
    /// (Apache then parses with the request pool as both pools, as `ap_check_cmd_context`
    /// tests): server-wide configuration must not change then.
    pub(crate) fn in_htaccess(self) -> bool {
        self.parms().pool == self.parms().temp_pool
    }

    /// This module's configuration record for the server being configured.
    pub(crate) fn server_config_mut<T>(self) -> &'c mut T {
        // SAFETY: our slot holds the `T` our create_server_config made; directives are
        // processed one at a time.
        unsafe {
            let vector = (*self.parms().server).module_config as *mut *mut c_void;
            &mut *(*vector.add(module_index() as usize)).cast::<T>()
        }
    }

    /// `path` relative to ServerRoot unless it is absolute.
    pub(crate) fn server_root_relative(self, path: &str) -> String {
        let c_path = self.pool().c_string(path.as_bytes());
        // SAFETY: returns a pool string or null.
        let resolved = unsafe { sys::ap_server_root_relative(self.pool().raw(), c_path.as_ptr()) };
        if resolved.is_null() {
            return path.to_owned();
        }
        // SAFETY: a NUL-terminated pool string.
        unsafe { CStr::from_ptr(resolved) }
            .to_string_lossy()
            .into_owned()
    }

    /// `file:line` of the directive.
    pub(crate) fn location(self) -> String {
        let directive = self.parms().directive;
        if directive.is_null() {
            return "(unknown place)".to_owned();
        }
        // SAFETY: the directive node being processed.
        let (file, line) = unsafe { ((*directive).filename, (*directive).line_num) };
        let file = if file.is_null() {
            "(unknown file)".into()
        } else {
            // SAFETY: a NUL-terminated configuration string.
            unsafe { CStr::from_ptr(file) }.to_string_lossy()
        };
        format!("{file}:{line}")
    }

    /// Runs a directive's parser, turning its error into the message `apache2 -t` prints.
    pub(crate) fn run(self, parse: impl FnOnce() -> Result<(), String>) -> *const c_char {
        let outcome = guard(
            Err(
                "mod_rustapp failed internally while reading this directive (see the log)"
                    .to_owned(),
            ),
            parse,
        );
        match outcome {
            Ok(()) => ptr::null(),
            Err(message) => self.pool().c_string(message.as_bytes()).as_ptr(),
        }
    }
}

/// A directive argument as text.
pub(crate) fn argument<'a>(arg: *const c_char) -> Result<&'a str, String> {
    if arg.is_null() {
        return Err("missing argument".to_owned());
    }
    // SAFETY: Apache passes NUL-terminated argument strings.
    unsafe { CStr::from_ptr(arg) }
        .to_str()
        .map_err(|_| "arguments must be UTF-8 text".to_owned())
}
