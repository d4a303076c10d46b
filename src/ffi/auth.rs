//! The providers Apache's authentication modules call: `rustapp` for `AuthBasicProvider` and
//! `AuthDigestProvider`, `rustapp-group` for `Require`. Registered as providers (not hooks),
//! so they combine with `<RequireAll>`, `<RequireAny>`, other providers and
//! `AuthnProviderAlias` like mod_authn_file and mod_authz_groupfile do.

use std::ffi::{c_char, c_void};
use std::ptr;

use super::authn_cache::{remember_password, remember_realm_hash};
use super::cmd::Cmd;
use super::entry::guard;
use super::request::{Request, bytes};
use super::sys;
use crate::auth::{self, GroupVerdict, HashVerdict, PasswordVerdict};

static AUTHN_PROVIDER: sys::authn_provider = sys::authn_provider {
    check_password: Some(check_password),
    get_realm_hash: Some(get_realm_hash),
};

static AUTHZ_PROVIDER: sys::authz_provider = sys::authz_provider {
    check_authorization: Some(check_authorization),
    parse_require_line: Some(parse_require_line),
};

/// # Safety
/// `pool` must be the pool Apache passes `register_hooks`.
pub(crate) unsafe fn register_providers(pool: *mut sys::apr_pool_t) {
    // SAFETY: static providers and names; the group and version strings are the header's.
    unsafe {
        sys::ap_register_auth_provider(
            pool,
            sys::AUTHN_PROVIDER_GROUP.as_ptr().cast(),
            c"rustapp".as_ptr(),
            sys::AUTHN_PROVIDER_VERSION.as_ptr().cast(),
            (&raw const AUTHN_PROVIDER).cast::<c_void>(),
            sys::AP_AUTH_INTERNAL_PER_CONF,
        );
        sys::ap_register_auth_provider(
            pool,
            sys::AUTHZ_PROVIDER_GROUP.as_ptr().cast(),
            c"rustapp-group".as_ptr(),
            sys::AUTHZ_PROVIDER_VERSION.as_ptr().cast(),
            (&raw const AUTHZ_PROVIDER).cast::<c_void>(),
            sys::AP_AUTH_INTERNAL_PER_CONF,
        );
    }
    super::authn_cache::register_lookup();
}

unsafe extern "C" fn check_password(
    r: *mut sys::request_rec,
    user: *const c_char,
    password: *const c_char,
) -> sys::authn_status {
    guard(sys::authn_status_AUTH_GENERAL_ERROR, || {
        // SAFETY: Apache passes the request and the credentials the client sent.
        let (request, sent_user, sent_password) =
            unsafe { (Request::from_raw(r), bytes(user), bytes(password)) };
        match auth::check_password(request, sent_user, sent_password) {
            PasswordVerdict::Granted => {
                // Not when the store renamed the user: a cache hit could not rename it again.
                if request.user() == sent_user {
                    // SAFETY: this provider call's arguments.
                    unsafe { remember_password(r, user, password) };
                }
                sys::authn_status_AUTH_GRANTED
            }
            PasswordVerdict::Denied => sys::authn_status_AUTH_DENIED,
            PasswordVerdict::UnknownUser => sys::authn_status_AUTH_USER_NOT_FOUND,
            PasswordVerdict::Failed => sys::authn_status_AUTH_GENERAL_ERROR,
        }
    })
}

unsafe extern "C" fn get_realm_hash(
    r: *mut sys::request_rec,
    user: *const c_char,
    realm: *const c_char,
    hash: *mut *mut c_char,
) -> sys::authn_status {
    guard(sys::authn_status_AUTH_GENERAL_ERROR, || {
        // SAFETY: Apache passes the request, the user and realm, and an out-pointer.
        let (request, user_bytes, realm_bytes) =
            unsafe { (Request::from_raw(r), bytes(user), bytes(realm)) };
        match auth::realm_hash(request, user_bytes, realm_bytes) {
            HashVerdict::Found(found) => {
                let copy = request.pool().c_string(found.as_bytes());
                // SAFETY: this provider call's arguments.
                unsafe { remember_realm_hash(r, user, realm, copy) };
                // SAFETY: Apache's out-pointer; the hash is a request-pool string.
                unsafe { *hash = copy.as_ptr().cast_mut() };
                sys::authn_status_AUTH_USER_FOUND
            }
            HashVerdict::UnknownUser => sys::authn_status_AUTH_USER_NOT_FOUND,
            HashVerdict::Failed => sys::authn_status_AUTH_GENERAL_ERROR,
        }
    })
}

unsafe extern "C" fn check_authorization(
    r: *mut sys::request_rec,
    require_line: *const c_char,
    _parsed: *const c_void,
) -> sys::authz_status {
    guard(sys::authz_status_AUTHZ_GENERAL_ERROR, || {
        // SAFETY: Apache passes the request and the `Require` line's arguments.
        let (request, line) = unsafe { (Request::from_raw(r), bytes(require_line)) };
        match auth::check_groups(request, line) {
            GroupVerdict::Granted => sys::authz_status_AUTHZ_GRANTED,
            GroupVerdict::Denied => sys::authz_status_AUTHZ_DENIED,
            GroupVerdict::NoUser => sys::authz_status_AUTHZ_DENIED_NO_USER,
            GroupVerdict::Failed => sys::authz_status_AUTHZ_GENERAL_ERROR,
        }
    })
}

unsafe extern "C" fn parse_require_line(
    cmd: *mut sys::cmd_parms,
    require_line: *const c_char,
    parsed: *mut *const c_void,
) -> *const c_char {
    // SAFETY: Apache passes the directive's cmd_parms, the line and an out-pointer.
    let (cmd, line) = unsafe {
        *parsed = ptr::null();
        (Cmd::from_raw(cmd), bytes(require_line))
    };
    cmd.run(|| auth::required_groups(line).map(|_| ()))
}
