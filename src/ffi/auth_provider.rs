//! Authentication providers: `AuthBasicProvider`/`AuthDigestProvider` (authn) and `Require`
//! (authz). Registered as providers (not hooks), so they combine with `<RequireAll>`,
//! `<RequireAny>`, other providers and `AuthnProviderAlias` as mod_authn_file and
//! mod_authz_groupfile do. The module answers through [`Module`]'s provider functions.

use std::ffi::{CStr, c_char, c_void};
use std::ptr;

use super::auth_answers::{AUTHN_NAME, AUTHZ_NAME, PasswordCheck, RealmHashLookup, RequireCheck};
use super::cmd::Cmd;
use super::entry::guard;
use super::module::Module;
use super::request::{Request, bytes};
use super::sys;

/// The providers' tables, one set per module type.
struct Providers<M>(std::marker::PhantomData<M>);

impl<M: Module> Providers<M> {
    const AUTHN: sys::authn_provider = sys::authn_provider {
        check_password: Some(check_password::<M>),
        get_realm_hash: Some(get_realm_hash::<M>),
    };
    const AUTHZ: sys::authz_provider = sys::authz_provider {
        check_authorization: Some(check_authorization::<M>),
        parse_require_line: Some(parse_require_line::<M>),
    };
}

/// # Safety
/// `pool` must be the pool Apache passes `register_hooks`.
pub(super) unsafe fn register<M: Module>(pool: *mut sys::apr_pool_t) {
    // Apache keeps the pointers: promoted constants are 'static.
    let authn: &'static sys::authn_provider = &Providers::<M>::AUTHN;
    let authz: &'static sys::authz_provider = &Providers::<M>::AUTHZ;
    // SAFETY: static providers and names; the group and version strings are the header's.
    unsafe {
        sys::ap_register_auth_provider(
            pool,
            sys::AUTHN_PROVIDER_GROUP.as_ptr().cast(),
            AUTHN_NAME.as_ptr(),
            sys::AUTHN_PROVIDER_VERSION.as_ptr().cast(),
            ptr::from_ref(authn).cast::<c_void>(),
            sys::AP_AUTH_INTERNAL_PER_CONF,
        );
        sys::ap_register_auth_provider(
            pool,
            sys::AUTHZ_PROVIDER_GROUP.as_ptr().cast(),
            AUTHZ_NAME.as_ptr(),
            sys::AUTHZ_PROVIDER_VERSION.as_ptr().cast(),
            ptr::from_ref(authz).cast::<c_void>(),
            sys::AP_AUTH_INTERNAL_PER_CONF,
        );
    }
    super::authn_cache::register_lookup();
}

unsafe extern "C" fn check_password<M: Module>(
    r: *mut sys::request_rec,
    user: *const c_char,
    password: *const c_char,
) -> sys::authn_status {
    guard(sys::authn_status_AUTH_GENERAL_ERROR, || {
        // SAFETY: Apache passes the request and the credentials the client sent.
        let (request, user, password) =
            unsafe { (Request::from_raw(r), bytes(user), bytes(password)) };
        match M::check_password(request, user, password) {
            PasswordCheck::Granted => sys::authn_status_AUTH_GRANTED,
            PasswordCheck::Denied => sys::authn_status_AUTH_DENIED,
            PasswordCheck::UnknownUser => sys::authn_status_AUTH_USER_NOT_FOUND,
            PasswordCheck::Error => sys::authn_status_AUTH_GENERAL_ERROR,
        }
    })
}

unsafe extern "C" fn get_realm_hash<M: Module>(
    r: *mut sys::request_rec,
    user: *const c_char,
    realm: *const c_char,
    hash: *mut *mut c_char,
) -> sys::authn_status {
    guard(sys::authn_status_AUTH_GENERAL_ERROR, || {
        // SAFETY: Apache passes the request, the user and realm, and an out-pointer.
        let (request, user, realm) = unsafe { (Request::from_raw(r), bytes(user), bytes(realm)) };
        match M::realm_hash(request, user, realm) {
            RealmHashLookup::Found(found) => {
                // SAFETY: Apache's out-pointer; the hash is a request-pool string.
                unsafe { *hash = found.as_ptr().cast_mut() };
                sys::authn_status_AUTH_USER_FOUND
            }
            RealmHashLookup::UnknownUser => sys::authn_status_AUTH_USER_NOT_FOUND,
            RealmHashLookup::Error => sys::authn_status_AUTH_GENERAL_ERROR,
        }
    })
}

unsafe extern "C" fn check_authorization<M: Module>(
    r: *mut sys::request_rec,
    require_line: *const c_char,
    _parsed: *const c_void,
) -> sys::authz_status {
    guard(sys::authz_status_AUTHZ_GENERAL_ERROR, || {
        // SAFETY: Apache passes the request and the `Require` line's arguments.
        let (request, line) = unsafe { (Request::from_raw(r), bytes(require_line)) };
        match M::check_require(request, line) {
            RequireCheck::Granted => sys::authz_status_AUTHZ_GRANTED,
            RequireCheck::Denied => sys::authz_status_AUTHZ_DENIED,
            RequireCheck::NoUser => sys::authz_status_AUTHZ_DENIED_NO_USER,
            RequireCheck::Error => sys::authz_status_AUTHZ_GENERAL_ERROR,
        }
    })
}

/// What the `Require` parser answers when the module panicked (the panic hook logged it).
const PANICKED: &CStr =
    c"mod_rustapp failed internally while reading this Require line (see the error log)";

unsafe extern "C" fn parse_require_line<M: Module>(
    cmd: *mut sys::cmd_parms,
    require_line: *const c_char,
    parsed: *mut *const c_void,
) -> *const c_char {
    guard(PANICKED.as_ptr(), || {
        // SAFETY: Apache passes the directive's cmd_parms, the line and an out-pointer.
        let (cmd, line) = unsafe {
            *parsed = ptr::null();
            (Cmd::from_raw(cmd), bytes(require_line))
        };
        match M::parse_require_line(line) {
            Ok(()) => ptr::null(),
            Err(message) => cmd.pool().c_string(message.as_bytes()).as_ptr(),
        }
    })
}
