//! Feeding mod_authn_socache: with `AuthBasicProvider socache rustapp` and
//! `AuthnCacheProvideFor rustapp`, successful checks are remembered in Apache's shared memory,
//! so the application (and its deliberately slow password hashing) is asked once per user per
//! `AuthnCacheTimeout` instead of on every request, as with mod_authn_file.

use std::ffi::{CStr, c_char};
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::entry::guard;
use super::request::Request;
use super::sys;

/// mod_authn_socache's `ap_authn_cache_store`, when that module is loaded (0 otherwise).
static CACHE_STORE: AtomicUsize = AtomicUsize::new(0);

type CacheStoreFn = unsafe extern "C" fn(
    r: *mut sys::request_rec,
    provider: *const c_char,
    user: *const c_char,
    realm: *const c_char,
    data: *const c_char,
);

/// Looks `ap_authn_cache_store` up once modules have registered their optional functions.
pub(crate) fn register_lookup() {
    // SAFETY: registers a static function while Apache loads the module.
    unsafe {
        sys::ap_hook_optional_fn_retrieve(
            Some(find_cache_store),
            ptr::null(),
            ptr::null(),
            sys::APR_HOOK_MIDDLE,
        );
    }
}

unsafe extern "C" fn find_cache_store() {
    guard((), || {
        // SAFETY: looks up a function another module may have registered by name.
        let found = unsafe { sys::apr_dynamic_fn_retrieve(c"ap_authn_cache_store".as_ptr()) };
        CACHE_STORE.store(found.map_or(0, |f| f as usize), Ordering::Release);
    })
}

/// Hands a check's result to mod_authn_socache (which caches it only for providers named by
/// `AuthnCacheProvideFor`): `data` is a password hash it can verify, or a realm hash.
///
/// # Safety
/// `r`, `user` and `realm` (null or a string) must be the provider call's arguments.
pub(crate) unsafe fn remember(
    r: *mut sys::request_rec,
    user: *const c_char,
    realm: *const c_char,
    data: &CStr,
) {
    let store = CACHE_STORE.load(Ordering::Acquire);
    if store == 0 {
        return;
    }
    // SAFETY: the address `apr_dynamic_fn_retrieve` returned for this declared type.
    let store: CacheStoreFn = unsafe { std::mem::transmute::<usize, CacheStoreFn>(store) };
    // SAFETY: per the contract; the strings outlive the call.
    unsafe { store(r, c"rustapp".as_ptr(), user, realm, data.as_ptr()) }
}

/// A salted APR-MD5 hash of `password`, which mod_authn_socache verifies with
/// `ap_password_validate`. Only the cache (in Apache's memory, for `AuthnCacheTimeout`) keeps
/// it; the application's own store keeps its own hashes.
pub(crate) fn cacheable_hash<'r>(request: Request<'r>, password: &CStr) -> Option<&'r CStr> {
    const SALT_CHARS: &[u8; 64] =
        b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut random = [0u8; 8];
    // SAFETY: fills the buffer it is given.
    if unsafe { sys::apr_generate_random_bytes(random.as_mut_ptr(), random.len()) } != 0 {
        return None;
    }
    let salt: Vec<u8> = random
        .iter()
        .map(|b| SALT_CHARS[usize::from(b % 64)])
        .collect();
    let salt = request.pool().c_string(&salt);
    let mut hash = [0 as c_char; 120];
    // SAFETY: NUL-terminated inputs and a buffer of the given size.
    let status = unsafe {
        sys::apr_md5_encode(
            password.as_ptr(),
            salt.as_ptr(),
            hash.as_mut_ptr(),
            hash.len(),
        )
    };
    if status != 0 {
        return None;
    }
    // SAFETY: apr_md5_encode wrote a NUL-terminated string into `hash`.
    let hash = unsafe { CStr::from_ptr(hash.as_ptr()) };
    Some(request.pool().c_string(hash.to_bytes()))
}
