//! The module record Apache finds through `LoadModule`, and the functions it holds: the
//! configuration callbacks and the hooks, each converting pointers, guarding against panics
//! and calling the [`Module`]'s safe function.

use std::cell::UnsafeCell;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::ptr;

use super::auth_provider;
use super::directive::CommandTable;
use super::entry::guard;
use super::index;
use super::log::{install_module_logger, log_main};
use super::log_level::ApacheLevel;
use super::module::{ConfigRecord, Module, ModuleRecord, StatusFlags};
use super::pool::Pool;
use super::request::Request;
use super::server::Server;
use super::sys;

impl ModuleRecord {
    /// The record of module `M`. `name` is the source file name Apache derives the short name
    /// from (`mod_x.c` gives `LogLevel x:debug`).
    pub(crate) const fn new<M: Module, const N: usize>(
        name: &'static CStr,
        commands: &'static CommandTable<N>,
    ) -> ModuleRecord {
        ModuleRecord(UnsafeCell::new(sys::module {
            version: sys::MODULE_MAGIC_NUMBER_MAJOR,
            minor_version: sys::MODULE_MAGIC_NUMBER_MINOR,
            module_index: -1,
            name: name.as_ptr(),
            dynamic_load_handle: ptr::null_mut(),
            next: ptr::null_mut(),
            magic: sys::MODULE_MAGIC_COOKIE as std::ffi::c_ulong,
            rewrite_args: None,
            create_dir_config: Some(create_dir_config::<M>),
            merge_dir_config: Some(merge_config::<M::DirConfig>),
            create_server_config: Some(create_server_config::<M>),
            merge_server_config: Some(merge_config::<M::ServerConfig>),
            cmds: commands.as_ptr(),
            register_hooks: Some(register_hooks::<M>),
            flags: 0,
        }))
    }
}

// ---- configuration records ----------------------------------------------------------------

unsafe extern "C" fn create_server_config<M: Module>(
    pool: *mut sys::apr_pool_t,
    _server: *mut sys::server_rec,
) -> *mut c_void {
    // SAFETY: Apache passes the configuration pool.
    guard(ptr::null_mut(), || unsafe {
        Pool::from_raw(pool)
            .adopt(M::ServerConfig::default())
            .cast()
    })
}

unsafe extern "C" fn create_dir_config<M: Module>(
    pool: *mut sys::apr_pool_t,
    _dir: *mut c_char,
) -> *mut c_void {
    // SAFETY: Apache passes the configuration pool.
    guard(ptr::null_mut(), || unsafe {
        Pool::from_raw(pool).adopt(M::DirConfig::default()).cast()
    })
}

/// Apache's merge callback for both record types.
unsafe extern "C" fn merge_config<T: ConfigRecord>(
    pool: *mut sys::apr_pool_t,
    base: *mut c_void,
    add: *mut c_void,
) -> *mut c_void {
    guard(ptr::null_mut(), || {
        // SAFETY: both records were made by our create callbacks for `T`; the pool is the
        // configuration (or request) pool.
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

/// `Alias` and `ScriptAlias` of mod_alias win over a mount point above them, so static files
/// can be served from inside an application's URL space (as with mod_wsgi).
static AFTER_MOD_ALIAS: NameList<2> = NameList([c"mod_alias.c".as_ptr(), ptr::null()]);

unsafe extern "C" fn register_hooks<M: Module>(pool: *mut sys::apr_pool_t) {
    guard((), || {
        // Apache has given the record its index by now (ap_add_module runs this after).
        index::register(M::record().0.get());
        install_module_logger();
        // SAFETY: the pool Apache registers modules with.
        unsafe { auth_provider::register::<M>(pool) };
        // SAFETY: registering static functions while Apache loads the module.
        unsafe {
            sys::ap_hook_translate_name(
                Some(translate_name::<M>),
                AFTER_MOD_ALIAS.0.as_ptr(),
                ptr::null(),
                sys::APR_HOOK_MIDDLE,
            );
            sys::ap_hook_map_to_storage(
                Some(map_to_storage::<M>),
                ptr::null(),
                ptr::null(),
                sys::APR_HOOK_MIDDLE,
            );
            sys::ap_hook_handler(
                Some(handler::<M>),
                ptr::null(),
                ptr::null(),
                sys::APR_HOOK_MIDDLE,
            );
            sys::ap_hook_post_config(
                Some(post_config::<M>),
                ptr::null(),
                ptr::null(),
                sys::APR_HOOK_MIDDLE,
            );
            sys::ap_hook_check_config(
                Some(check_config::<M>),
                ptr::null(),
                ptr::null(),
                sys::APR_HOOK_MIDDLE,
            );
            sys::ap_hook_child_init(
                Some(child_init::<M>),
                ptr::null(),
                ptr::null(),
                sys::APR_HOOK_MIDDLE,
            );
            sys::rustapp_shim_hook_status(Some(status_hook::<M>));
            sys::rustapp_shim_register_filters();
        }
    })
}

unsafe extern "C" fn translate_name<M: Module>(request: *mut sys::request_rec) -> c_int {
    // SAFETY: Apache passes the request being processed.
    guard(sys::DECLINED, || {
        M::translate_name(unsafe { Request::from_raw(request) }).raw()
    })
}

unsafe extern "C" fn map_to_storage<M: Module>(request: *mut sys::request_rec) -> c_int {
    // SAFETY: Apache passes the request being processed.
    guard(sys::DECLINED, || {
        M::map_to_storage(unsafe { Request::from_raw(request) }).raw()
    })
}

unsafe extern "C" fn handler<M: Module>(request: *mut sys::request_rec) -> c_int {
    // SAFETY: Apache passes the request being processed.
    guard(sys::HTTP_INTERNAL_SERVER_ERROR, || {
        M::handler(unsafe { Request::from_raw(request) }).raw()
    })
}

unsafe extern "C" fn status_hook<M: Module>(request: *mut sys::request_rec, flags: c_int) -> c_int {
    // SAFETY: mod_status passes the request whose page it writes.
    guard(sys::OK, || {
        let short = unsafe { sys::rustapp_shim_status_is_short(flags) } != 0;
        M::status_section(unsafe { Request::from_raw(request) }, StatusFlags { short });
        sys::OK
    })
}

unsafe extern "C" fn child_init<M: Module>(
    pool: *mut sys::apr_pool_t,
    server: *mut sys::server_rec,
) {
    guard((), || {
        // SAFETY: the child's pool and the main server live until the child exits.
        let (pool, server) = unsafe { (Pool::from_raw(pool), Server::from_raw(server)) };
        M::child_init(pool, server);
    })
}

/// A configuration hook's outcome: an error is logged and stops Apache.
fn configuration_outcome(outcome: Result<(), String>) -> c_int {
    match outcome {
        Ok(()) => sys::OK,
        Err(problem) => {
            log_main(ApacheLevel::ERR, &format!("mod_rustapp: {problem}"));
            sys::HTTP_INTERNAL_SERVER_ERROR
        }
    }
}

unsafe extern "C" fn post_config<M: Module>(
    pconf: *mut sys::apr_pool_t,
    _plog: *mut sys::apr_pool_t,
    _ptemp: *mut sys::apr_pool_t,
    server: *mut sys::server_rec,
) -> c_int {
    guard(sys::HTTP_INTERNAL_SERVER_ERROR, || {
        // SAFETY: the configuration pool and main server live for this generation.
        let (pool, server) = unsafe { (Pool::from_raw(pconf), Server::from_raw(server)) };
        configuration_outcome(M::post_config(pool, server))
    })
}

unsafe extern "C" fn check_config<M: Module>(
    _pconf: *mut sys::apr_pool_t,
    _plog: *mut sys::apr_pool_t,
    _ptemp: *mut sys::apr_pool_t,
    server: *mut sys::server_rec,
) -> c_int {
    guard(sys::HTTP_INTERNAL_SERVER_ERROR, || {
        // SAFETY: the main server of the configuration being checked.
        configuration_outcome(M::check_config(unsafe { Server::from_raw(server) }))
    })
}
