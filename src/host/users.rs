//! The host side of an application's user store (ABI 1.1): which entry point answers which
//! question, and what its answer means.

use std::ffi::c_void;

use bytes::Bytes;
use rustapp::abi::{self, AppV1, AuthFn, Str};

/// A question Apache's authentication asks an application's user store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UserQuestion {
    /// Is this the user's password? (`AuthBasicProvider rustapp`)
    Password,
    /// Which groups is the user in? (`Require rustapp-group`)
    Groups,
    /// What is the user's digest hash for this realm? (`AuthDigestProvider rustapp`)
    RealmHash,
}

impl UserQuestion {
    /// The entry point's name, for messages.
    pub(crate) fn entry_name(self) -> &'static str {
        match self {
            UserQuestion::Password => "check_password",
            UserQuestion::Groups => "groups_for_user",
            UserQuestion::RealmHash => "realm_hash",
        }
    }

    /// The number the daemon protocol carries.
    pub(crate) fn wire(self) -> u8 {
        match self {
            UserQuestion::Password => 1,
            UserQuestion::Groups => 2,
            UserQuestion::RealmHash => 3,
        }
    }

    pub(crate) fn from_wire(number: u8) -> Option<UserQuestion> {
        [
            UserQuestion::Password,
            UserQuestion::Groups,
            UserQuestion::RealmHash,
        ]
        .into_iter()
        .find(|q| q.wire() == number)
    }

    /// The application's entry point, if its table (of whatever minor version) has one.
    pub(crate) fn entry(self, table: &AppV1) -> Option<AuthFn> {
        let (offset, entry) = match self {
            UserQuestion::Password => (
                std::mem::offset_of!(AppV1, check_password),
                table.check_password,
            ),
            UserQuestion::Groups => (
                std::mem::offset_of!(AppV1, groups_for_user),
                table.groups_for_user,
            ),
            UserQuestion::RealmHash => (std::mem::offset_of!(AppV1, realm_hash), table.realm_hash),
        };
        // A field beyond the size the application was built with is not its to fill.
        let present = table.size as usize >= offset + size_of::<Option<AuthFn>>();
        entry.filter(|_| present)
    }
}

/// A user store's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum StoreAnswer {
    /// Granted (with an optional canonical user name), the groups, or the realm hash.
    Ok(Vec<Bytes>),
    NoUser,
    /// Wrong password.
    Denied,
    /// The application failed; it logged why.
    Failed,
    /// No user store, or not this kind of question.
    Unsupported,
}

impl StoreAnswer {
    /// Reads an `AUTH_*` result; an unknown one is a failure.
    pub(crate) fn from_code(code: i32, values: Vec<Bytes>) -> StoreAnswer {
        match code {
            abi::AUTH_OK => StoreAnswer::Ok(values),
            abi::AUTH_NO_USER => StoreAnswer::NoUser,
            abi::AUTH_DENIED => StoreAnswer::Denied,
            abi::AUTH_UNSUPPORTED => StoreAnswer::Unsupported,
            _ => StoreAnswer::Failed,
        }
    }

    /// The `AUTH_*` result and strings, for the daemon protocol.
    pub(crate) fn into_code(self) -> (i32, Vec<Bytes>) {
        match self {
            StoreAnswer::Ok(values) => (abi::AUTH_OK, values),
            StoreAnswer::NoUser => (abi::AUTH_NO_USER, Vec::new()),
            StoreAnswer::Denied => (abi::AUTH_DENIED, Vec::new()),
            StoreAnswer::Failed => (abi::AUTH_ERROR, Vec::new()),
            StoreAnswer::Unsupported => (abi::AUTH_UNSUPPORTED, Vec::new()),
        }
    }
}

/// Collects what the application `receive`s; the strings are copied at once.
pub(crate) unsafe extern "C" fn receive_value(context: *mut c_void, value: Str) {
    crate::ffi::guard((), || {
        // SAFETY: `context` is the `Vec` the host passed with this callback, and `value` is
        // valid during the call (the ABI's `ReceiveFn` contract).
        let (values, value) = unsafe { (&mut *context.cast::<Vec<Bytes>>(), value.as_bytes()) };
        values.push(Bytes::copy_from_slice(value));
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_survive_the_wire() {
        for q in [
            UserQuestion::Password,
            UserQuestion::Groups,
            UserQuestion::RealmHash,
        ] {
            assert_eq!(UserQuestion::from_wire(q.wire()), Some(q));
        }
        assert_eq!(UserQuestion::from_wire(0), None);
    }

    #[test]
    fn answers_survive_their_codes() {
        for answer in [
            StoreAnswer::Ok(vec![Bytes::from_static(b"staff")]),
            StoreAnswer::NoUser,
            StoreAnswer::Denied,
            StoreAnswer::Failed,
            StoreAnswer::Unsupported,
        ] {
            let (code, values) = answer.clone().into_code();
            assert_eq!(StoreAnswer::from_code(code, values), answer);
        }
        assert_eq!(StoreAnswer::from_code(77, vec![]), StoreAnswer::Failed);
    }
}
