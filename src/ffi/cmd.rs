//! `cmd_parms`, the context of a directive being read, and the arguments a directive gets.

use std::ffi::CStr;
use std::marker::PhantomData;
use std::ptr::NonNull;

use super::index::config_slot;
use super::pool::Pool;
use super::server::Server;
use super::sys;

/// A directive's arguments as the module's handler receives them.
pub(crate) enum Args<'a> {
    Words(Vec<&'a str>),
    Flag(bool),
}

/// The context of a directive being read.
#[derive(Clone, Copy)]
pub(crate) struct Cmd<'c> {
    raw: NonNull<sys::cmd_parms>,
    _life: PhantomData<&'c sys::cmd_parms>,
}

impl<'c> Cmd<'c> {
    /// # Safety
    /// `raw` must be the `cmd_parms` of the directive being processed.
    pub(super) unsafe fn from_raw(raw: *mut sys::cmd_parms) -> Cmd<'c> {
        Cmd {
            raw: NonNull::new(raw).expect("Apache passed null cmd_parms"),
            _life: PhantomData,
        }
    }

    pub(super) fn parms(&self) -> &'c sys::cmd_parms {
        // SAFETY: live during the directive, per `from_raw`.
        unsafe { self.raw.as_ref() }
    }

    /// The directive's name as written in the table.
    pub(crate) fn name(self) -> &'c str {
        let command = self.parms().cmd;
        if command.is_null() {
            return "(directive)";
        }
        // SAFETY: the table's static names.
        unsafe { CStr::from_ptr((*command).name) }
            .to_str()
            .unwrap_or("(directive)")
    }

    pub(crate) fn pool(self) -> Pool<'c> {
        // SAFETY: the configuration pool outlives directive processing.
        unsafe { Pool::from_raw(self.parms().pool) }
    }

    /// The pool of this configuration generation (`pconf`), also when reading `.htaccess`.
    pub(crate) fn config_pool(self) -> Pool<'c> {
        self.server().config_pool()
    }

    pub(crate) fn server(self) -> Server<'c> {
        // SAFETY: the server being configured outlives its directives.
        unsafe { Server::from_raw(self.parms().server) }
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
            let slot = config_slot((*self.parms().server).module_config)
                .expect("a directive of a loaded module");
            &mut *(*slot).cast::<T>()
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
}
