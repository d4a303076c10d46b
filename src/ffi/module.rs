//! The shape of an Apache module, in safe terms: the configuration records Apache creates and
//! merges, and what it asks of the module at each hook and provider call. The module itself (at
//! the top of the crate) implements [`Module`]; `record.rs` and the trampolines call it.
//! Nothing in `ffi` names the module's own static.

use std::cell::UnsafeCell;

use super::auth_answers::{PasswordCheck, RealmHashLookup, RequireCheck};
use super::cmd::{Args, Cmd};
use super::pool::Pool;
use super::request::Request;
use super::server::Server;
use super::status::HookStatus;
use super::sys;

/// A configuration record Apache creates per server or per directory and merges: a virtual
/// host's over the main server's, or a directory's over its parent's.
pub(crate) trait ConfigRecord: Default + 'static {
    fn merge(base: &Self, add: &Self) -> Self;
}

/// What a module does at each point Apache calls it.
pub(crate) trait Module: 'static {
    type ServerConfig: ConfigRecord;
    type DirConfig: ConfigRecord;

    /// The exported record Apache loaded.
    fn record() -> &'static ModuleRecord;

    /// A directive of the module's table, by the id its table entry gives.
    fn directive(
        id: usize,
        cmd: Cmd<'_>,
        dir: &mut Self::DirConfig,
        args: Args<'_>,
    ) -> Result<(), String>;

    fn translate_name(request: Request<'_>) -> HookStatus;
    fn map_to_storage(request: Request<'_>) -> HookStatus;
    fn handler(request: Request<'_>) -> HookStatus;

    /// Also run by `apache2 -t`; an error stops Apache.
    fn check_config(main: Server<'_>) -> Result<(), String>;
    /// In Apache's parent, once per configuration pass; an error stops Apache.
    fn post_config(pconf: Pool<'static>, main: Server<'static>) -> Result<(), String>;
    /// In each child process Apache forks, before it serves.
    fn child_init(pchild: Pool<'static>, main: Server<'static>);

    /// `AuthBasicProvider NAME`: the password `password` for `user`.
    fn check_password(request: Request<'_>, user: &[u8], password: &[u8]) -> PasswordCheck;
    /// `AuthDigestProvider NAME`: the MD5 of `user:realm:password`, as 32 hex digits.
    fn realm_hash<'r>(request: Request<'r>, user: &[u8], realm: &[u8]) -> RealmHashLookup<'r>;
    /// `Require NAME-group ...`, with the line's arguments.
    fn check_require(request: Request<'_>, require_line: &[u8]) -> RequireCheck;
    /// Checks a `Require NAME-group` line when the configuration is read.
    fn parse_require_line(require_line: &[u8]) -> Result<(), String>;

    /// mod_status's page is being written: the module's section of it.
    fn status_section(request: Request<'_>, flags: StatusFlags);
}

/// How mod_status writes its page.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StatusFlags {
    /// The machine-readable form (`?auto`): `Name: value` lines, no HTML.
    pub(crate) short: bool,
}

/// The module record. Apache writes into it (index, list link, DSO handle), so it lives in
/// writable memory behind an `UnsafeCell`.
#[repr(transparent)]
pub(crate) struct ModuleRecord(pub(super) UnsafeCell<sys::module>);

// SAFETY: Apache writes the record while loading modules, before any thread exists; after that
// it is only read.
unsafe impl Sync for ModuleRecord {}
