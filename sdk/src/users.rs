//! The application's user store, which Apache's authentication can ask: `AuthBasicProvider
//! rustapp` checks passwords with it, `Require rustapp-group ...` asks it for groups, and
//! `AuthDigestProvider rustapp` asks it for realm hashes.

use std::fmt;

use crate::{Error, Request};

/// The answer to a password check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PasswordCheck {
    /// No such user: Apache may ask its next provider.
    UnknownUser,
    /// The user exists and the password is wrong.
    Denied,
    /// The password is right; the user is known as the name the client sent.
    Granted,
    /// The password is right; the user is known by this canonical name (say, the name in the
    /// database for a case-insensitive login), which becomes `REMOTE_USER`.
    GrantedAs(String),
}

/// Users and groups an application keeps, for Apache to authenticate against.
///
/// Apache calls these from many threads at once, before (and independently of) any request
/// the application handles; in daemon mode they run in the daemon, as the site's user.
/// `request` is the request being authenticated: its headers (never `Authorization`) and
/// variables (`REMOTE_ADDR`, ...) can be read; its body reads as empty.
///
/// Both an unknown user and a wrong password should take as long as a right one, so that
/// response times do not tell which user names exist.
pub trait UserStore: Send + Sync {
    /// Checks `password` for `user` (`AuthBasicProvider rustapp`).
    fn check_password(
        &self,
        request: &Request<'_>,
        user: &str,
        password: &str,
    ) -> Result<PasswordCheck, Error>;

    /// The groups `user` belongs to (`Require rustapp-group ...`). The default has none to
    /// offer: it answers with an error saying so, and the request gets a 500.
    fn groups_for_user(&self, request: &Request<'_>, user: &str) -> Result<Vec<String>, Error> {
        let _ = (request, user);
        Err(Box::new(Unsupported("groups_for_user")))
    }

    /// `MD5(user ":" realm ":" password)` in lowercase hex for HTTP digest authentication
    /// (`AuthDigestProvider rustapp`), or `None` for an unknown user. Only a store that keeps
    /// such hashes can answer; the default answers with an error saying so.
    fn realm_hash(
        &self,
        request: &Request<'_>,
        user: &str,
        realm: &str,
    ) -> Result<Option<String>, Error> {
        let _ = (request, user, realm);
        Err(Box::new(Unsupported("realm_hash")))
    }
}

/// The error a [`UserStore`] method's default answers with; the host logs that the
/// application does not implement the method, rather than a failure.
#[derive(Debug)]
pub struct Unsupported(pub &'static str);

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the application's user store does not implement {}",
            self.0
        )
    }
}

impl std::error::Error for Unsupported {}
