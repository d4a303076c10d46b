//! What the authentication providers answer Apache, and the name they are registered under.

use std::ffi::CStr;

/// The provider name for `AuthBasicProvider`/`AuthDigestProvider` (and `AuthnCacheProvideFor`).
pub(crate) const AUTHN_NAME: &CStr = c"rustapp";
/// The provider name for `Require`.
pub(super) const AUTHZ_NAME: &CStr = c"rustapp-group";

/// A password check's outcome.
pub(crate) enum PasswordCheck {
    Granted,
    Denied,
    UnknownUser,
    /// No answer (logged): the request gets a 500.
    Error,
}

/// A digest realm hash lookup's outcome.
pub(crate) enum RealmHashLookup<'r> {
    /// The hash, as a string of the request's pool.
    Found(&'r CStr),
    UnknownUser,
    Error,
}

/// A `Require` line's outcome.
pub(crate) enum RequireCheck {
    Granted,
    Denied,
    /// Nobody has authenticated yet: Apache runs authentication first.
    NoUser,
    Error,
}
