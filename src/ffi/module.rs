//! The shape of an Apache module, in safe terms: the module record, the configuration records
//! Apache creates and merges, and the hooks and providers it calls. The module itself (at the
//! top of the crate) implements [`Module`]; everything here only converts pointers, guards
//! against panics and calls it. Nothing here names the module's own static.

use std::cell::UnsafeCell;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

use super::auth_provider::{self, PasswordCheck, RealmHashLookup, RequireCheck};
use super::directive::{Args, Cmd, CommandTable};
use super::entry::guard;
use super::log::{ApacheLevel, install_module_logger, log_main};
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
}

/// The module record. Apache writes into it (index, list link, DSO handle), so it lives in
/// writable memory behind an `UnsafeCell`.
#[repr(transparent)]
pub(crate) struct ModuleRecord(UnsafeCell<sys::module>);

// SAFETY: Apache writes the record while loading modules, before any thread exists; after that
// it is only read.
unsafe impl Sync for ModuleRecord {}

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

/// The record Apache registered the hooks of (set in `register_hooks`, after Apache gave it
/// its index).
static REGISTERED: AtomicPtr<sys::module> = AtomicPtr::new(ptr::null_mut());

/// This module's index in Apache's configuration vectors (it changes on every reload), or -1
/// before Apache has loaded it.
pub(crate) fn module_index() -> c_int {
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
        REGISTERED.store(M::record().0.get(), Ordering::Release);
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
