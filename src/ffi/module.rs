//! The `module` record Apache finds through `LoadModule rustapp_module ...`, its directive
//! table and its hooks. Each `extern "C"` function here only converts pointers, guards against
//! panics and calls the safe code that does the work.

use std::cell::UnsafeCell;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::ptr;

use super::cmd::{Cmd, argument};
use super::entry::guard;
use super::log::{ApacheLevel, install_module_logger, log_main};
use super::pool::Pool;
use super::request::Request;
use super::server::Server;
use super::sys;
use crate::config::{self, DirConfig, Merge, ServerConfig, UserStoreRef};
use crate::{handler, lifecycle};

/// The module record. Apache writes into it (index, list link, DSO handle), so it lives in
/// writable memory behind an `UnsafeCell`.
#[repr(transparent)]
pub struct ModuleRecord(UnsafeCell<sys::module>);

// SAFETY: Apache writes the record while loading modules, before any thread exists; after that
// it is only read.
unsafe impl Sync for ModuleRecord {}

// Exported (and so a root that keeps every hook alive) only in the real module: the unit-test
// binary is an executable that has no httpd to provide the `ap_*` symbols.
#[cfg_attr(not(test), unsafe(no_mangle))]
#[cfg_attr(not(test), used)]
#[allow(non_upper_case_globals)] // the name LoadModule looks up
pub static rustapp_module: ModuleRecord = ModuleRecord(UnsafeCell::new(sys::module {
    version: sys::MODULE_MAGIC_NUMBER_MAJOR,
    minor_version: sys::MODULE_MAGIC_NUMBER_MINOR,
    module_index: -1,
    // Apache derives the short name `rustapp` (for `LogLevel rustapp:debug`) from this.
    name: c"mod_rustapp.c".as_ptr(),
    dynamic_load_handle: ptr::null_mut(),
    next: ptr::null_mut(),
    magic: sys::MODULE_MAGIC_COOKIE as std::ffi::c_ulong,
    rewrite_args: None,
    create_dir_config: Some(create_dir_config),
    merge_dir_config: Some(merge_config::<DirConfig>),
    create_server_config: Some(create_server_config),
    merge_server_config: Some(merge_config::<ServerConfig>),
    cmds: (&raw const COMMANDS).cast(),
    register_hooks: Some(register_hooks),
    flags: 0,
}));

/// This module's index in Apache's configuration vectors; it changes on every (re)load.
pub(crate) fn module_index() -> c_int {
    // SAFETY: a plain read of a field Apache set while loading the module.
    unsafe { ptr::read_volatile(&raw const (*rustapp_module.0.get()).module_index) }
}

// ---- directives -------------------------------------------------------------------------

#[repr(transparent)]
struct CommandTable<const N: usize>([sys::command_rec; N]);

// SAFETY: immutable static data (string and function pointers).
unsafe impl<const N: usize> Sync for CommandTable<N> {}

const fn command(
    name: &'static CStr,
    func: sys::cmd_func,
    args_how: sys::cmd_how,
    req_override: c_int,
    help: &'static CStr,
) -> sys::command_rec {
    sys::command_rec {
        name: name.as_ptr(),
        func,
        cmd_data: ptr::null_mut(),
        req_override,
        args_how,
        errmsg: help.as_ptr(),
    }
}

const END_OF_TABLE: sys::command_rec = sys::command_rec {
    name: ptr::null(),
    func: sys::cmd_func { no_args: None },
    cmd_data: ptr::null_mut(),
    req_override: 0,
    args_how: 0,
    errmsg: ptr::null(),
};

static COMMANDS: CommandTable<10> = CommandTable([
    command(
        c"RustAppAlias",
        sys::cmd_func { take_argv: Some(directive_alias) },
        sys::cmd_how_TAKE_ARGV,
        sys::RSRC_CONF,
        c"RustAppAlias URL-path /path/to/libapp.so [setting=NAME=VALUE ...]: serve an application library at a URL path",
    ),
    command(
        c"RustAppSetting",
        sys::cmd_func { take2: Some(directive_setting) },
        sys::cmd_how_TAKE2,
        sys::RSRC_CONF,
        c"RustAppSetting NAME VALUE: a setting for the applications of this server or virtual host",
    ),
    command(
        c"RustAppPassAuthorization",
        sys::cmd_func { flag: Some(directive_pass_authorization) },
        sys::cmd_how_FLAG,
        sys::RSRC_CONF | sys::ACCESS_CONF | sys::OR_AUTHCFG,
        c"RustAppPassAuthorization On|Off: whether applications see the Authorization header (default Off)",
    ),
    command(
        c"RustAppDaemonProcess",
        sys::cmd_func { take_argv: Some(directive_daemon_process) },
        sys::cmd_how_TAKE_ARGV,
        sys::RSRC_CONF,
        c"RustAppDaemonProcess NAME [processes=N threads=N user=NAME group=NAME home=DIR umask=0NNN display-name=NAME env=K=V env-file=PATH connect-timeout=S socket-timeout=S listen-backlog=N]: a group of daemon processes",
    ),
    command(
        c"RustAppProcessGroup",
        sys::cmd_func { take1: Some(directive_process_group) },
        sys::cmd_how_TAKE1,
        sys::RSRC_CONF | sys::ACCESS_CONF,
        c"RustAppProcessGroup NAME: run the applications of this server or location in daemon group NAME",
    ),
    command(
        c"RustAppRestrictEmbedded",
        sys::cmd_func { flag: Some(directive_restrict_embedded) },
        sys::cmd_how_FLAG,
        sys::RSRC_CONF,
        c"RustAppRestrictEmbedded On|Off: refuse to run applications inside Apache's own processes (default Off)",
    ),
    command(
        c"RustAppSocketPrefix",
        sys::cmd_func { take1: Some(directive_socket_prefix) },
        sys::cmd_how_TAKE1,
        sys::RSRC_CONF,
        c"RustAppSocketPrefix DIR: where daemon groups' sockets go (default: DefaultRuntimeDir)",
    ),
    command(
        c"RustAppAuthUser",
        sys::cmd_func { take_argv: Some(directive_auth_user) },
        sys::cmd_how_TAKE_ARGV,
        sys::ACCESS_CONF | sys::OR_AUTHCFG,
        c"RustAppAuthUser /path/to/libapp.so [process-group=NAME]: the application whose users AuthBasicProvider rustapp checks here (default: the application serving the URL)",
    ),
    command(
        c"RustAppAuthGroup",
        sys::cmd_func { take_argv: Some(directive_auth_group) },
        sys::cmd_how_TAKE_ARGV,
        sys::ACCESS_CONF | sys::OR_AUTHCFG,
        c"RustAppAuthGroup /path/to/libapp.so [process-group=NAME]: the application whose groups Require rustapp-group asks here (default: RustAppAuthUser's)",
    ),
    END_OF_TABLE,
]);

/// A `TAKE_ARGV` directive's arguments as text.
///
/// # Safety
/// `argv` must hold `argc` NUL-terminated strings, as Apache passes them.
unsafe fn arguments<'a>(argc: c_int, argv: *const *mut c_char) -> Result<Vec<&'a str>, String> {
    let count = usize::try_from(argc).unwrap_or(0);
    // SAFETY: per the contract.
    (0..count)
        .map(|i| argument(unsafe { *argv.add(i) }))
        .collect()
}

unsafe extern "C" fn directive_alias(
    cmd: *mut sys::cmd_parms,
    _dir: *mut c_void,
    argc: c_int,
    argv: *const *mut c_char,
) -> *const c_char {
    // SAFETY: Apache passes the directive's cmd_parms.
    let cmd = unsafe { Cmd::from_raw(cmd) };
    cmd.run(|| {
        // SAFETY: Apache passes `argc` argument strings.
        let args = unsafe { arguments(argc, argv) }.map_err(|e| format!("RustAppAlias: {e}"))?;
        config::rust_app_alias(
            cmd.server_config_mut::<ServerConfig>(),
            &args,
            |path| cmd.server_root_relative(path),
            cmd.location(),
        )
    })
}

unsafe extern "C" fn directive_daemon_process(
    cmd: *mut sys::cmd_parms,
    _dir: *mut c_void,
    argc: c_int,
    argv: *const *mut c_char,
) -> *const c_char {
    // SAFETY: Apache passes the directive's cmd_parms.
    let cmd = unsafe { Cmd::from_raw(cmd) };
    cmd.run(|| {
        // SAFETY: Apache passes `argc` argument strings.
        let args =
            unsafe { arguments(argc, argv) }.map_err(|e| format!("RustAppDaemonProcess: {e}"))?;
        config::rust_app_daemon_process(
            cmd.server_config_mut::<ServerConfig>(),
            &args,
            cmd.location(),
        )
    })
}

unsafe extern "C" fn directive_process_group(
    cmd: *mut sys::cmd_parms,
    dir: *mut c_void,
    name: *const c_char,
) -> *const c_char {
    // SAFETY: Apache passes the directive's cmd_parms and our per-directory record.
    let cmd = unsafe { Cmd::from_raw(cmd) };
    cmd.run(|| {
        let name = argument(name).map_err(|e| format!("RustAppProcessGroup: {e}"))?;
        let group = config::parse_group_reference(name, "RustAppProcessGroup")?;
        // SAFETY: `dir` is the DirConfig our create_dir_config made for this section.
        unsafe { &mut *dir.cast::<DirConfig>() }.process_group = Some(group);
        Ok(())
    })
}

unsafe extern "C" fn directive_auth_user(
    cmd: *mut sys::cmd_parms,
    dir: *mut c_void,
    argc: c_int,
    argv: *const *mut c_char,
) -> *const c_char {
    // SAFETY: Apache's directive arguments and our per-directory record.
    unsafe {
        user_store_directive("RustAppAuthUser", cmd, dir, argc, argv, |dir, store| {
            dir.auth_user = Some(store)
        })
    }
}

unsafe extern "C" fn directive_auth_group(
    cmd: *mut sys::cmd_parms,
    dir: *mut c_void,
    argc: c_int,
    argv: *const *mut c_char,
) -> *const c_char {
    // SAFETY: Apache's directive arguments and our per-directory record.
    unsafe {
        user_store_directive("RustAppAuthGroup", cmd, dir, argc, argv, |dir, store| {
            dir.auth_group = Some(store)
        })
    }
}

/// `RustAppAuthUser` and `RustAppAuthGroup`.
///
/// # Safety
/// The arguments must be those Apache passes a `TAKE_ARGV` directive of this module.
unsafe fn user_store_directive(
    directive: &'static str,
    cmd: *mut sys::cmd_parms,
    dir: *mut c_void,
    argc: c_int,
    argv: *const *mut c_char,
    record: fn(&mut DirConfig, UserStoreRef),
) -> *const c_char {
    // SAFETY: per the contract.
    let cmd = unsafe { Cmd::from_raw(cmd) };
    cmd.run(|| {
        // SAFETY: Apache passes `argc` argument strings.
        let args = unsafe { arguments(argc, argv) }.map_err(|e| format!("{directive}: {e}"))?;
        let store = config::parse_user_store_ref(
            directive,
            &args,
            |path| cmd.server_root_relative(path),
            cmd.location(),
        )?;
        // From .htaccess the store must be one the server configuration already starts.
        if !cmd.in_htaccess() {
            config::register_user_store(cmd.server_config_mut::<ServerConfig>(), &store);
        }
        // SAFETY: `dir` is the DirConfig our create_dir_config made for this section.
        record(unsafe { &mut *dir.cast::<DirConfig>() }, store);
        Ok(())
    })
}

unsafe extern "C" fn directive_restrict_embedded(
    cmd: *mut sys::cmd_parms,
    _dir: *mut c_void,
    on: c_int,
) -> *const c_char {
    // SAFETY: Apache passes the directive's cmd_parms.
    let cmd = unsafe { Cmd::from_raw(cmd) };
    cmd.run(|| {
        cmd.server_config_mut::<ServerConfig>().restrict_embedded = Some(on != 0);
        Ok(())
    })
}

unsafe extern "C" fn directive_socket_prefix(
    cmd: *mut sys::cmd_parms,
    _dir: *mut c_void,
    dir: *const c_char,
) -> *const c_char {
    // SAFETY: Apache passes the directive's cmd_parms.
    let cmd = unsafe { Cmd::from_raw(cmd) };
    cmd.run(|| {
        let dir = argument(dir).map_err(|e| format!("RustAppSocketPrefix: {e}"))?;
        let dir = cmd.server_root_relative(dir);
        if !std::path::Path::new(&dir).is_dir() {
            return Err(format!("RustAppSocketPrefix: {dir} is not a directory; give the directory the daemon sockets go in"));
        }
        cmd.server_config_mut::<ServerConfig>().socket_prefix = Some(dir);
        Ok(())
    })
}

unsafe extern "C" fn directive_setting(
    cmd: *mut sys::cmd_parms,
    _dir: *mut c_void,
    name: *const c_char,
    value: *const c_char,
) -> *const c_char {
    // SAFETY: Apache passes the directive's cmd_parms.
    let cmd = unsafe { Cmd::from_raw(cmd) };
    cmd.run(|| {
        let (name, value) = (argument(name), argument(value));
        let (name, value) = (
            name.map_err(|e| format!("RustAppSetting: {e}"))?,
            value.map_err(|e| format!("RustAppSetting: {e}"))?,
        );
        config::rust_app_setting(cmd.server_config_mut::<ServerConfig>(), name, value)
    })
}

unsafe extern "C" fn directive_pass_authorization(
    cmd: *mut sys::cmd_parms,
    dir: *mut c_void,
    on: c_int,
) -> *const c_char {
    // SAFETY: Apache passes the directive's cmd_parms and our per-directory record.
    let cmd = unsafe { Cmd::from_raw(cmd) };
    cmd.run(|| {
        // SAFETY: `dir` is the DirConfig our create_dir_config made for this section.
        let dir = unsafe { &mut *dir.cast::<DirConfig>() };
        dir.pass_authorization = Some(on != 0);
        Ok(())
    })
}

// ---- configuration records ----------------------------------------------------------------

unsafe extern "C" fn create_server_config(
    pool: *mut sys::apr_pool_t,
    _server: *mut sys::server_rec,
) -> *mut c_void {
    // SAFETY: Apache passes the configuration pool.
    unsafe { create_config::<ServerConfig>(pool) }
}

unsafe extern "C" fn create_dir_config(
    pool: *mut sys::apr_pool_t,
    _dir: *mut c_char,
) -> *mut c_void {
    // SAFETY: Apache passes the configuration pool.
    unsafe { create_config::<DirConfig>(pool) }
}

/// # Safety
/// `pool` must be the configuration pool Apache passed.
unsafe fn create_config<T: Merge>(pool: *mut sys::apr_pool_t) -> *mut c_void {
    // SAFETY: per the contract.
    guard(ptr::null_mut(), || {
        unsafe { Pool::from_raw(pool) }.adopt(T::default()).cast()
    })
}

/// Apache's merge callback for both record types.
unsafe extern "C" fn merge_config<T: Merge>(
    pool: *mut sys::apr_pool_t,
    base: *mut c_void,
    add: *mut c_void,
) -> *mut c_void {
    guard(ptr::null_mut(), || {
        // SAFETY: both records were made by `create_config::<T>`; the pool is the config pool.
        let (pool, base, add) =
            unsafe { (Pool::from_raw(pool), &*base.cast::<T>(), &*add.cast::<T>()) };
        pool.adopt(T::merge(base, add)).cast()
    })
}

// ---- hooks ----------------------------------------------------------------------------------

#[repr(transparent)]
struct NameList<const N: usize>([*const c_char; N]);

// SAFETY: immutable static strings.
unsafe impl<const N: usize> Sync for NameList<N> {}

/// `Alias` and `ScriptAlias` of mod_alias win over a `RustAppAlias` mounted above them, so
/// static files can be served from inside an application's URL space (as with mod_wsgi).
static AFTER_MOD_ALIAS: NameList<2> = NameList([c"mod_alias.c".as_ptr(), ptr::null()]);

unsafe extern "C" fn register_hooks(pool: *mut sys::apr_pool_t) {
    guard((), || {
        install_module_logger();
        // SAFETY: the pool Apache registers modules with.
        unsafe { super::auth::register_providers(pool) };
        // SAFETY: registering static functions while Apache loads the module.
        unsafe {
            sys::ap_hook_translate_name(
                Some(translate_name),
                AFTER_MOD_ALIAS.0.as_ptr(),
                ptr::null(),
                sys::APR_HOOK_MIDDLE,
            );
            sys::ap_hook_map_to_storage(
                Some(map_to_storage),
                ptr::null(),
                ptr::null(),
                sys::APR_HOOK_MIDDLE,
            );
            sys::ap_hook_handler(
                Some(handler_hook),
                ptr::null(),
                ptr::null(),
                sys::APR_HOOK_MIDDLE,
            );
            sys::ap_hook_post_config(
                Some(post_config),
                ptr::null(),
                ptr::null(),
                sys::APR_HOOK_MIDDLE,
            );
            sys::ap_hook_check_config(
                Some(check_config),
                ptr::null(),
                ptr::null(),
                sys::APR_HOOK_MIDDLE,
            );
            sys::ap_hook_child_init(
                Some(child_init),
                ptr::null(),
                ptr::null(),
                sys::APR_HOOK_MIDDLE,
            );
        }
    })
}

unsafe extern "C" fn translate_name(request: *mut sys::request_rec) -> c_int {
    // SAFETY: Apache passes the request being processed.
    guard(sys::DECLINED, || {
        handler::translate_name(unsafe { Request::from_raw(request) })
    })
}

unsafe extern "C" fn map_to_storage(request: *mut sys::request_rec) -> c_int {
    // SAFETY: Apache passes the request being processed.
    guard(sys::DECLINED, || {
        handler::map_to_storage(unsafe { Request::from_raw(request) })
    })
}

unsafe extern "C" fn handler_hook(request: *mut sys::request_rec) -> c_int {
    // SAFETY: Apache passes the request being processed.
    guard(sys::HTTP_INTERNAL_SERVER_ERROR, || {
        handler::handle(unsafe { Request::from_raw(request) })
    })
}

unsafe extern "C" fn child_init(pool: *mut sys::apr_pool_t, server: *mut sys::server_rec) {
    guard((), || {
        // SAFETY: the child's pool and the main server live until the child exits.
        let (pool, server) = unsafe { (Pool::from_raw(pool), Server::from_raw(server)) };
        lifecycle::child_init(pool, server);
    })
}

unsafe extern "C" fn post_config(
    pconf: *mut sys::apr_pool_t,
    _plog: *mut sys::apr_pool_t,
    _ptemp: *mut sys::apr_pool_t,
    server: *mut sys::server_rec,
) -> c_int {
    guard(sys::HTTP_INTERNAL_SERVER_ERROR, || {
        // SAFETY: the configuration pool and main server live for this generation.
        let (pool, server) = unsafe { (Pool::from_raw(pconf), Server::from_raw(server)) };
        match lifecycle::post_config(pool, server) {
            Ok(()) => sys::OK,
            Err(problem) => {
                log_main(ApacheLevel::ERR, &format!("mod_rustapp: {problem}"));
                sys::HTTP_INTERNAL_SERVER_ERROR
            }
        }
    })
}

unsafe extern "C" fn check_config(
    _pconf: *mut sys::apr_pool_t,
    _plog: *mut sys::apr_pool_t,
    _ptemp: *mut sys::apr_pool_t,
    server: *mut sys::server_rec,
) -> c_int {
    guard(sys::HTTP_INTERNAL_SERVER_ERROR, || {
        // SAFETY: the main server of the configuration being checked.
        let server = unsafe { Server::from_raw(server) };
        match lifecycle::check_config(server) {
            Ok(()) => sys::OK,
            Err(problem) => {
                log_main(ApacheLevel::ERR, &format!("mod_rustapp: {problem}"));
                sys::HTTP_INTERNAL_SERVER_ERROR
            }
        }
    })
}
