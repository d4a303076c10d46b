//! `RustAppAuthUser` and `RustAppAuthGroup`: which application's user store Apache's
//! authentication asks for a directory or location.

use std::sync::Arc;

use super::{Alias, MountPoint, ServerConfig, parse_group_reference};

/// A directory's choice of user store: an application library, optionally in a daemon group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct UserStoreRef {
    pub(crate) library: String,
    pub(crate) process_group: Option<String>,
    /// `file:line` of the directive, for messages.
    pub(crate) defined_at: String,
}

impl UserStoreRef {
    /// Whether `app` is this library, in this group when one is named.
    pub(crate) fn is_served_by(&self, app: &Alias) -> bool {
        app.library == self.library
            && (self.process_group.is_none() || app.process_group == self.process_group)
    }
}

/// `RustAppAuthUser PATH [process-group=NAME]` (and `RustAppAuthGroup`, named `directive`).
/// `resolve` turns a relative library path into one under ServerRoot.
pub(crate) fn parse_user_store_ref(
    directive: &str,
    args: &[&str],
    resolve: impl Fn(&str) -> String,
    defined_at: String,
) -> Result<UserStoreRef, String> {
    let usage = format!(
        "{directive} takes the application library whose users Apache checks: {directive} /path/to/libapp.so [process-group=NAME]"
    );
    let [library, options @ ..] = args else {
        return Err(usage);
    };
    let library = resolve(library);
    super::directives::check_library_file(&library).map_err(|e| format!("{directive}: {e}"))?;
    let mut process_group = None;
    for option in options {
        match option.strip_prefix("process-group=") {
            Some(group) => process_group = Some(parse_group_reference(group, directive)?),
            None => {
                return Err(format!(
                    "{directive}: unknown option '{option}'; allowed: process-group=NAME"
                ));
            }
        }
    }
    Ok(UserStoreRef {
        library,
        process_group,
        defined_at,
    })
}

/// Makes sure a serving process will have an instance for `store`: a `RustAppAlias` of the
/// same library serves it if there is one when the check runs, and otherwise an instance
/// started for authentication alone, recorded here.
pub(crate) fn register_user_store(config: &mut ServerConfig, store: &UserStoreRef) {
    if config
        .user_stores
        .iter()
        .any(|app| app.library == store.library && app.process_group == store.process_group)
    {
        return;
    }
    let root = MountPoint::parse("/").expect("the root is a mount point");
    if let Ok(app) = Alias::new(
        root,
        store.library.clone(),
        Default::default(),
        store.defined_at.clone(),
        store.process_group.clone(),
    ) {
        config
            .user_stores
            .push(Arc::new(app.for_authentication_only()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn existing_library() -> String {
        std::env::current_exe().unwrap().display().to_string()
    }

    fn parse(args: &[&str]) -> Result<UserStoreRef, String> {
        parse_user_store_ref("RustAppAuthUser", args, str::to_owned, "t.conf:3".into())
    }

    #[test]
    fn a_library_and_a_group_are_recorded() {
        let lib = existing_library();
        let store = parse(&[&lib, "process-group=shop"]).unwrap();
        assert_eq!(store.library, lib);
        assert_eq!(store.process_group.as_deref(), Some("shop"));
    }

    #[test]
    fn mistakes_say_what_is_allowed() {
        let err = parse(&[]).unwrap_err();
        assert!(err.contains("RustAppAuthUser /path/to/libapp.so"), "{err}");
        let err = parse(&["/no/such/lib.so"]).unwrap_err();
        assert!(err.contains("/no/such/lib.so"), "{err}");
        let err = parse(&[&existing_library(), "threads=2"]).unwrap_err();
        assert!(err.contains("allowed: process-group=NAME"), "{err}");
    }

    #[test]
    fn one_instance_per_library_and_group() {
        let lib = existing_library();
        let mut config = ServerConfig::default();
        let store = parse(&[&lib]).unwrap();
        register_user_store(&mut config, &store);
        register_user_store(&mut config, &store);
        register_user_store(&mut config, &parse(&[&lib, "process-group=g"]).unwrap());
        assert_eq!(config.user_stores.len(), 2);
        assert!(store.is_served_by(&config.user_stores[1]));
    }
}
