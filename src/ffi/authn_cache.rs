//! Feeding mod_authn_socache: with `AuthBasicProvider socache rustapp` and
//! `AuthnCacheProvideFor rustapp`, successful checks are remembered in Apache's shared memory,
//! so the application (and its deliberately slow password hashing) is asked once per user per
//! `AuthnCacheTimeout` instead of on every request, as with mod_authn_file.

use std::ffi::{CStr, CString, c_char};
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::entry::guard;
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

/// mod_authn_socache's store function, if that module is loaded.
fn cache_store() -> Option<CacheStoreFn> {
    let store = CACHE_STORE.load(Ordering::Acquire);
    // SAFETY: a nonzero value is the address `apr_dynamic_fn_retrieve` returned for this
    // declared type.
    (store != 0).then(|| unsafe { std::mem::transmute::<usize, CacheStoreFn>(store) })
}

/// Hands a granted password check to mod_authn_socache (which keeps it only for providers named
/// by `AuthnCacheProvideFor`), as a salted APR-MD5 hash it verifies with
/// `ap_password_validate`. Nothing is hashed when the module is not loaded.
///
/// # Safety
/// `r`, `user` and `password` must be the provider call's arguments.
pub(crate) unsafe fn remember_password(
    r: *mut sys::request_rec,
    user: *const c_char,
    password: *const c_char,
) {
    let Some(store) = cache_store() else { return };
    if password.is_null() {
        return;
    }
    let Some(hash) = apr_md5_hash(password) else {
        return;
    };
    // SAFETY: per the contract; the hash outlives the call (the cache copies it).
    unsafe { store(r, c"rustapp".as_ptr(), user, ptr::null(), hash.as_ptr()) }
}

/// Hands a digest realm hash to mod_authn_socache.
///
/// # Safety
/// `r`, `user` and `realm` must be the provider call's arguments.
pub(crate) unsafe fn remember_realm_hash(
    r: *mut sys::request_rec,
    user: *const c_char,
    realm: *const c_char,
    hash: &CStr,
) {
    if let Some(store) = cache_store() {
        // SAFETY: per the contract; the strings outlive the call.
        unsafe { store(r, c"rustapp".as_ptr(), user, realm, hash.as_ptr()) }
    }
}

/// A salted APR-MD5 hash (`$apr1$...`) of the NUL-terminated `password`.
fn apr_md5_hash(password: *const c_char) -> Option<CString> {
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
    let salt = CString::new(salt).expect("salt characters are not NUL");
    let mut hash = [0 as c_char; 120];
    // SAFETY: NUL-terminated inputs and a buffer of the given size.
    let status =
        unsafe { sys::apr_md5_encode(password, salt.as_ptr(), hash.as_mut_ptr(), hash.len()) };
    // SAFETY: on success apr_md5_encode wrote a NUL-terminated string into `hash`.
    (status == 0).then(|| unsafe { CStr::from_ptr(hash.as_ptr()) }.to_owned())
}
