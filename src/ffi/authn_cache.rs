//! Feeding mod_authn_socache: with `AuthBasicProvider socache rustapp` and
//! `AuthnCacheProvideFor rustapp`, successful checks are remembered in Apache's shared memory,
//! so the application (and its deliberately slow password hashing) is asked once per user per
//! `AuthnCacheTimeout` instead of on every request, as with mod_authn_file.

use std::ffi::{CStr, CString, c_char};
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::auth_answers::AUTHN_NAME;
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
pub(super) fn register_lookup() {
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

/// Offers a granted password check to mod_authn_socache (which keeps it only for providers
/// named by `AuthnCacheProvideFor`), as a salted APR-MD5 hash it verifies with
/// `ap_password_validate`. Nothing is hashed when that module is not loaded.
pub(crate) fn remember_password(request: Request<'_>, user: &[u8], password: &[u8]) {
    let Some(store) = cache_store() else { return };
    let pool = request.pool();
    let Some(hash) = apr_md5_hash(pool.c_string(password)) else {
        return;
    };
    let user = pool.c_string(user);
    // SAFETY: a live request and NUL-terminated strings that outlive the call (the cache
    // copies them).
    unsafe {
        store(
            request.raw().cast_mut(),
            AUTHN_NAME.as_ptr(),
            user.as_ptr(),
            ptr::null(),
            hash.as_ptr(),
        )
    }
}

/// Offers a digest realm hash to mod_authn_socache.
pub(crate) fn remember_realm_hash(request: Request<'_>, user: &[u8], realm: &[u8], hash: &CStr) {
    let Some(store) = cache_store() else { return };
    let pool = request.pool();
    let (user, realm) = (pool.c_string(user), pool.c_string(realm));
    // SAFETY: a live request and NUL-terminated strings that outlive the call.
    unsafe {
        store(
            request.raw().cast_mut(),
            AUTHN_NAME.as_ptr(),
            user.as_ptr(),
            realm.as_ptr(),
            hash.as_ptr(),
        )
    }
}

/// A salted APR-MD5 hash (`$apr1$...`) of `password`.
fn apr_md5_hash(password: &CStr) -> Option<CString> {
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
    let status = unsafe {
        sys::apr_md5_encode(
            password.as_ptr(),
            salt.as_ptr(),
            hash.as_mut_ptr(),
            hash.len(),
        )
    };
    // SAFETY: on success apr_md5_encode wrote a NUL-terminated string into `hash`.
    (status == 0).then(|| unsafe { CStr::from_ptr(hash.as_ptr()) }.to_owned())
}
