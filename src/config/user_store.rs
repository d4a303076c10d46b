//! `RustAppAuthUser` and `RustAppAuthGroup`: which application's user store Apache's
//! authentication asks for a directory or location.

use std::sync::Arc;

use super::{Alias, ConfigTables, GroupIndex, MountPoint, ServerConfig, parse_group_reference};

/// A directory's choice of user store: an application library, optionally in a daemon group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct UserStoreRef {
    pub(crate) library: String,
    pub(crate) process_group: Option<GroupIndex>,
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

/// How a `.htaccess` or server-configuration directive finds a group by name.
pub(crate) enum GroupNames<'t> {
    /// Reading the server configuration: any name gets an index (checked once all is read).
    Naming(&'t mut ConfigTables),
    /// Reading `.htaccess`: only groups the server configuration defines.
    Defined(&'t ConfigTables),
}

/// `RustAppAuthUser PATH [process-group=NAME]` (and `RustAppAuthGroup`, named `directive`).
/// `resolve` turns a relative library path into one under ServerRoot.
pub(crate) fn parse_user_store_ref(
    directive: &str,
    args: &[&str],
    resolve: impl Fn(&str) -> String,
    defined_at: String,
    mut groups: GroupNames<'_>,
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
            Some(group) => {
                let name = parse_group_reference(group, directive)?;
                let index = match &mut groups {
                    GroupNames::Naming(tables) => Some(tables.name_group(name, || {
                        format!("{directive} at {defined_at} names process-group={name}")
                    })),
                    GroupNames::Defined(tables) => tables.defined_group(name),
                };
                process_group = Some(index.ok_or_else(|| {
                    format!(
                        "{directive}: process-group={name} names no group the server configuration defines"
                    )
                })?);
            }
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
pub(crate) fn register_user_store(
    config: &mut ServerConfig,
    tables: &mut ConfigTables,
    store: &UserStoreRef,
) {
    if config
        .user_stores
        .iter()
        .any(|app| app.library == store.library && app.process_group == store.process_group)
    {
        return;
    }
    let root = MountPoint::parse("/").expect("the root is a mount point");
    if let Ok(app) = Alias::new(
        tables.next_alias(),
        root,
        store.library.clone(),
        Default::default(),
        store.defined_at.clone(),
        store.process_group,
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

    fn parse_with(tables: &mut ConfigTables, args: &[&str]) -> Result<UserStoreRef, String> {
        let groups = GroupNames::Naming(tables);
        parse_user_store_ref(
            "RustAppAuthUser",
            args,
            str::to_owned,
            "t.conf:3".into(),
            groups,
        )
    }

    fn parse(args: &[&str]) -> Result<UserStoreRef, String> {
        parse_with(&mut ConfigTables::default(), args)
    }

    #[test]
    fn a_library_and_a_group_are_recorded() {
        let lib = existing_library();
        let mut tables = ConfigTables::default();
        let store = parse_with(&mut tables, &[&lib, "process-group=shop"]).unwrap();
        assert_eq!(store.library, lib);
        assert_eq!(tables.group_name(store.process_group.unwrap()), "shop");
    }

    #[test]
    fn htaccess_names_only_defined_groups() {
        let lib = existing_library();
        let mut tables = ConfigTables::default();
        tables.define_group("shop", "t.conf:1").unwrap();
        let parse = |tables: &ConfigTables, group: &str| {
            let option = format!("process-group={group}");
            let groups = GroupNames::Defined(tables);
            parse_user_store_ref(
                "RustAppAuthUser",
                &[&lib, &option],
                str::to_owned,
                ".htaccess:1".into(),
                groups,
            )
        };
        assert!(parse(&tables, "shop").is_ok());
        let err = parse(&tables, "nowhere").unwrap_err();
        assert!(
            err.contains("process-group=nowhere names no group"),
            "{err}"
        );
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
        let mut tables = ConfigTables::default();
        let store = parse_with(&mut tables, &[&lib]).unwrap();
        let in_group = parse_with(&mut tables, &[&lib, "process-group=g"]).unwrap();
        register_user_store(&mut config, &mut tables, &store);
        register_user_store(&mut config, &mut tables, &store);
        register_user_store(&mut config, &mut tables, &in_group);
        assert_eq!(config.user_stores.len(), 2);
        assert!(store.is_served_by(&config.user_stores[1]));
    }
}
