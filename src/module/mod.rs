//! The module itself, on top of everything: the record Apache finds through
//! `LoadModule rustapp_module ...`, its directives, and what each hook and provider does
//! (each a call into the layer that does the work).

mod directives;
mod lifecycle;

use crate::config::{DirConfig, ServerConfig};
use crate::ffi::{
    Args, Cmd, HookStatus, Module, ModuleRecord, PasswordCheck, Pool, RealmHashLookup, Request,
    RequireCheck, Server, StatusFlags,
};
use crate::serve;

/// mod_rustapp, as Apache sees it.
pub(crate) struct RustApp;

// Exported (and so a root that keeps every hook alive) only in the real module: the unit-test
// binary is an executable that has no httpd to provide the `ap_*` symbols.
#[cfg_attr(not(test), unsafe(no_mangle))]
#[cfg_attr(not(test), used)]
#[allow(non_upper_case_globals)] // the name LoadModule looks up
pub static rustapp_module: ModuleRecord =
    // Apache derives the short name `rustapp` (for `LogLevel rustapp:debug`) from the name.
    ModuleRecord::new::<RustApp, { directives::COUNT }>(
        c"mod_rustapp.c",
        &directives::COMMANDS,
    );

impl Module for RustApp {
    type ServerConfig = ServerConfig;
    type DirConfig = DirConfig;

    fn record() -> &'static ModuleRecord {
        &rustapp_module
    }

    fn directive(
        id: usize,
        cmd: Cmd<'_>,
        dir: &mut DirConfig,
        args: Args<'_>,
    ) -> Result<(), String> {
        directives::apply(id, cmd, dir, args)
    }

    fn translate_name(request: Request<'_>) -> HookStatus {
        serve::translate_name(request)
    }

    fn map_to_storage(request: Request<'_>) -> HookStatus {
        serve::map_to_storage(request)
    }

    fn handler(request: Request<'_>) -> HookStatus {
        serve::handle(request)
    }

    fn check_config(main: Server<'_>) -> Result<(), String> {
        lifecycle::check_config(main)
    }

    fn post_config(pconf: Pool<'static>, main: Server<'static>) -> Result<(), String> {
        lifecycle::post_config(pconf, main)
    }

    fn child_init(pchild: Pool<'static>, main: Server<'static>) {
        lifecycle::child_init(pchild, main);
    }

    fn check_password(request: Request<'_>, user: &[u8], password: &[u8]) -> PasswordCheck {
        serve::check_password(request, user, password)
    }

    fn realm_hash<'r>(request: Request<'r>, user: &[u8], realm: &[u8]) -> RealmHashLookup<'r> {
        serve::realm_hash(request, user, realm)
    }

    fn check_require(request: Request<'_>, require_line: &[u8]) -> RequireCheck {
        serve::check_groups(request, require_line)
    }

    fn parse_require_line(require_line: &[u8]) -> Result<(), String> {
        serve::required_groups(require_line).map(|_| ())
    }

    fn status_section(request: Request<'_>, flags: StatusFlags) {
        serve::status_section(request, flags)
    }
}
