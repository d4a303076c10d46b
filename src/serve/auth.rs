//! Authentication against an application's user store: which application answers for a
//! request, asking it where it runs (embedded or in its daemon group), and turning its answer
//! into what Apache's authentication providers return.

use bytes::Bytes;

use super::Registry;
use super::placement::{EmbeddingForbidden, Placement, placement};
use crate::config::{Alias, DirConfig, ServerConfig, UserStoreRef};
use crate::daemon::ask_via_daemon;
use crate::ffi::{
    PasswordCheck, RealmHashLookup, Request, RequireCheck, remember_password, remember_realm_hash,
    request_log_scope,
};
use crate::host::{Exchange, StoreAnswer, UserQuestion};

/// The longest user name or group accepted from a user store.
const MAX_NAME: usize = 256;

/// `AuthBasicProvider rustapp`. A granted check is offered to mod_authn_socache, unless the
/// store renamed the user (a cache hit could not rename them again).
pub(crate) fn check_password(request: Request<'_>, user: &[u8], password: &[u8]) -> PasswordCheck {
    let _scope = request_log_scope(request);
    match ask(request, UserQuestion::Password, user, password) {
        Some(StoreAnswer::Ok(names)) => match names.first() {
            None => {
                remember_password(request, user, password);
                PasswordCheck::Granted
            }
            Some(name) if is_acceptable_name(name) => {
                request.set_user(name);
                if name[..] == *user {
                    remember_password(request, user, password);
                }
                PasswordCheck::Granted
            }
            Some(name) => {
                log::error!(
                    "the user store granted {:?} under the name {:?}, which is empty, too long or has control characters; answering 500",
                    String::from_utf8_lossy(user),
                    String::from_utf8_lossy(name)
                );
                PasswordCheck::Error
            }
        },
        Some(StoreAnswer::Denied) => PasswordCheck::Denied,
        Some(StoreAnswer::NoUser) => PasswordCheck::UnknownUser,
        _ => PasswordCheck::Error,
    }
}

/// `AuthDigestProvider rustapp`; a hash found is offered to mod_authn_socache.
pub(crate) fn realm_hash<'r>(
    request: Request<'r>,
    user: &[u8],
    realm: &[u8],
) -> RealmHashLookup<'r> {
    let _scope = request_log_scope(request);
    match ask(request, UserQuestion::RealmHash, user, realm) {
        Some(StoreAnswer::Ok(values)) => match values.first().and_then(|v| as_md5_hex(v)) {
            Some(hash) => {
                let hash = request.pool().c_string(hash.as_bytes());
                remember_realm_hash(request, user, realm, hash);
                RealmHashLookup::Found(hash)
            }
            None => {
                log::error!(
                    "the user store's realm hash for {:?} is not 32 hexadecimal digits (MD5 of user:realm:password); answering 500",
                    String::from_utf8_lossy(user)
                );
                RealmHashLookup::Error
            }
        },
        Some(StoreAnswer::NoUser) => RealmHashLookup::UnknownUser,
        _ => RealmHashLookup::Error,
    }
}

/// `Require rustapp-group g1 g2 ...`: granted when the user is in any of the groups.
pub(crate) fn check_groups(request: Request<'_>, require_line: &[u8]) -> RequireCheck {
    let _scope = request_log_scope(request);
    let user = request.user();
    if user.is_empty() {
        return RequireCheck::NoUser;
    }
    let Ok(required) = required_groups(require_line) else {
        return RequireCheck::Error; // refused when the configuration was read
    };
    match ask(request, UserQuestion::Groups, user, b"") {
        Some(StoreAnswer::Ok(groups)) => {
            let member = groups.iter().any(|g| required.contains(&&g[..]));
            if !member {
                log::debug!(
                    "user {:?} is in none of the groups {:?}",
                    String::from_utf8_lossy(user),
                    String::from_utf8_lossy(require_line)
                );
            }
            if member {
                RequireCheck::Granted
            } else {
                RequireCheck::Denied
            }
        }
        // A user the store does not know is in no group.
        Some(StoreAnswer::NoUser) => RequireCheck::Denied,
        _ => RequireCheck::Error,
    }
}

/// The groups a `Require rustapp-group` line names; at least one.
pub(crate) fn required_groups(line: &[u8]) -> Result<Vec<&[u8]>, String> {
    let groups: Vec<&[u8]> = line
        .split(|b| b.is_ascii_whitespace())
        .filter(|g| !g.is_empty())
        .collect();
    if groups.is_empty() {
        return Err(
            "Require rustapp-group needs at least one group name: Require rustapp-group staff [admins ...]"
                .to_owned(),
        );
    }
    Ok(groups)
}

/// Asks the user store that answers for `request`; `None` when it cannot answer (logged).
fn ask(
    request: Request<'_>,
    question: UserQuestion,
    user: &[u8],
    secret: &[u8],
) -> Option<StoreAnswer> {
    let (app, chosen_group) = user_store_for(request, question)
        .map_err(|problem| log::error!("{problem}; answering 500"))
        .ok()?;
    let Some(registry) = Registry::current() else {
        log::error!(
            "{app} cannot answer {}: this process did not start mod_rustapp's applications",
            describe(question)
        );
        return None;
    };
    let exchange = Exchange::for_user_check(request, app.mount.script_name());
    let answer = match placement(request, app, chosen_group) {
        Ok(Placement::Embedded) => {
            let instance = registry
                .instance(app.index)
                .map_err(|reason| {
                    log::error!("{app} cannot answer {}: {reason}", describe(question))
                })
                .ok()?;
            let answer = instance.ask_users(question, &exchange.abi_request(), user, secret);
            if answer.is_none() {
                log::warn!("{app} is shutting down in this process; answering 500");
            }
            answer?
        }
        Ok(Placement::Group(index)) => {
            let Some(group) = registry.group(index) else {
                log::error!(
                    "{app} should answer {} in a daemon group this process does not know; answering 500",
                    describe(question)
                );
                return None;
            };
            // A check is work the group does, as a request is: counted with them.
            if let Some(figures) = &group.figures {
                figures.request_sent();
            }
            let answer = ask_via_daemon(&exchange, app, group, question, user, secret);
            if let Some(figures) = &group.figures {
                figures.request_over(answer.is_none().then_some(500));
            }
            answer?
        }
        Err(EmbeddingForbidden) => {
            log::error!(
                "{app} has no daemon process group and RustAppRestrictEmbedded On forbids running it inside Apache, also for {}; answering 500",
                describe(question)
            );
            return None;
        }
    };
    match &answer {
        StoreAnswer::Unsupported => log::error!(
            "{app} cannot answer {}: it has no user store (implement rustapp::App::users) or no {} entry point; answering 500",
            describe(question),
            question.entry_name()
        ),
        StoreAnswer::Failed => log::error!(
            "{app} failed to answer {} (its message precedes this one); answering 500",
            describe(question)
        ),
        _ => {}
    }
    Some(answer)
}

fn describe(question: UserQuestion) -> &'static str {
    match question {
        UserQuestion::Password => "a password check",
        UserQuestion::Groups => "a group check",
        UserQuestion::RealmHash => "a digest realm hash lookup",
    }
}

/// The application whose user store answers, and the daemon group chosen for it (if any):
/// `RustAppAuthUser`/`RustAppAuthGroup` when set, otherwise the application serving the URL.
fn user_store_for<'r>(
    request: Request<'r>,
    question: UserQuestion,
) -> Result<(&'r Alias, Option<crate::config::GroupIndex>), String> {
    let dir = request.module_dir_config::<DirConfig>();
    let named = |store: &'r Option<std::sync::Arc<UserStoreRef>>, directive| {
        store.as_deref().map(|s| (directive, s))
    };
    let chosen = dir.and_then(|d| match question {
        UserQuestion::Groups => named(&d.auth_group, "RustAppAuthGroup")
            .or_else(|| named(&d.auth_user, "RustAppAuthUser")),
        _ => named(&d.auth_user, "RustAppAuthUser"),
    });
    match chosen {
        Some((directive, store)) => {
            let config = request.server().module_config::<ServerConfig>();
            let app = config.and_then(|c| c.user_store(store)).ok_or_else(|| {
                format!(
                    "{directive} at {} names {}, which no RustAppAlias or RustAppAuthUser in the server configuration loads (in .htaccess only those can be named)",
                    store.defined_at,
                    store.library
                )
            })?;
            Ok((&**app, store.process_group))
        }
        None => {
            let app = request.module_request_data::<Alias>().ok_or_else(|| {
                format!(
                    "{} for {:?}, which no RustAppAlias serves; name the application with RustAppAuthUser /path/to/libapp.so",
                    match question {
                        UserQuestion::Groups => "Require rustapp-group is used",
                        _ => "the rustapp authentication provider is used",
                    },
                    String::from_utf8_lossy(request.path())
                )
            })?;
            Ok((app, None))
        }
    }
}

/// A user name the store may give as canonical: it becomes `REMOTE_USER` and goes into logs.
fn is_acceptable_name(name: &Bytes) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && std::str::from_utf8(name).is_ok_and(|s| !s.chars().any(char::is_control))
}

/// A realm hash as mod_auth_digest compares it: 32 lowercase hexadecimal digits.
fn as_md5_hex(value: &[u8]) -> Option<String> {
    (value.len() == 32 && value.iter().all(u8::is_ascii_hexdigit))
        .then(|| String::from_utf8_lossy(value).to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn require_lines_name_groups() {
        assert_eq!(
            required_groups(b" staff  admins ").unwrap(),
            vec![&b"staff"[..], b"admins"]
        );
        assert!(
            required_groups(b"  ")
                .unwrap_err()
                .contains("at least one group")
        );
    }

    #[test]
    fn canonical_names_are_checked() {
        assert!(is_acceptable_name(&Bytes::from_static(b"alice")));
        assert!(!is_acceptable_name(&Bytes::from_static(b"")));
        assert!(!is_acceptable_name(&Bytes::from_static(b"al\nice")));
        assert!(!is_acceptable_name(&Bytes::from(vec![b'a'; 300])));
    }

    #[test]
    fn realm_hashes_are_md5_hex() {
        let hash = b"0123456789ABCDEF0123456789abcdef";
        assert_eq!(
            as_md5_hex(hash).as_deref(),
            Some("0123456789abcdef0123456789abcdef")
        );
        assert_eq!(as_md5_hex(b"0123"), None);
        assert_eq!(as_md5_hex(&[b'g'; 32]), None);
    }
}
