//! Numbers handed out while the configuration is read: every daemon group name and every
//! application gets an index, so that serving finds them by index, never by name or search.

use std::fmt;

/// A daemon group, by the index its name got when the configuration named it first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct GroupIndex(u32);

/// An application (a `RustAppAlias`, or a library started for its user store alone).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct AliasIndex(u32);

impl GroupIndex {
    pub(crate) fn get(self) -> usize {
        self.0 as usize
    }
}

impl AliasIndex {
    pub(crate) fn get(self) -> usize {
        self.0 as usize
    }

    /// The index an Apache child names in a daemon request (`RequestHead::app`).
    pub(crate) fn wire(self) -> u32 {
        self.0
    }
}

/// One generation's names and numbers (kept in its configuration pool).
#[derive(Debug, Default)]
pub(crate) struct ConfigTables {
    groups: Vec<GroupName>,
    aliases: u32,
}

#[derive(Debug)]
struct GroupName {
    name: String,
    /// Where `RustAppDaemonProcess` defines it, once read.
    defined_at: Option<String>,
    /// The first directive that named it, as a sentence's start: "RustAppAlias /x at f:3".
    first_named_by: Option<String>,
}

impl ConfigTables {
    /// A new application's index.
    pub(crate) fn next_alias(&mut self) -> AliasIndex {
        self.aliases += 1;
        AliasIndex(self.aliases - 1)
    }

    /// How many indices `next_alias` has handed out.
    pub(crate) fn alias_count(&self) -> usize {
        self.aliases as usize
    }

    /// How many group indices there are.
    pub(crate) fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// The index of group `name`, as named by `by` (for the message if nobody defines it).
    pub(crate) fn name_group(&mut self, name: &str, by: impl FnOnce() -> String) -> GroupIndex {
        let index = self.intern(name);
        let group = &mut self.groups[index.get()];
        if group.first_named_by.is_none() {
            group.first_named_by = Some(by());
        }
        index
    }

    /// Records the definition of group `name` at `defined_at`.
    pub(crate) fn define_group(
        &mut self,
        name: &str,
        defined_at: &str,
    ) -> Result<GroupIndex, String> {
        let index = self.intern(name);
        let group = &mut self.groups[index.get()];
        if let Some(first) = &group.defined_at {
            return Err(format!(
                "RustAppDaemonProcess {name} at {defined_at} is already defined at {first}; group names must be unique"
            ));
        }
        group.defined_at = Some(defined_at.to_owned());
        Ok(index)
    }

    /// The index of a group the configuration defines (for `.htaccess`, read after it).
    pub(crate) fn defined_group(&self, name: &str) -> Option<GroupIndex> {
        self.groups
            .iter()
            .position(|g| g.name == name && g.defined_at.is_some())
            .map(|i| GroupIndex(i as u32))
    }

    /// The name of group `index`.
    #[cfg(test)]
    pub(crate) fn group_name(&self, index: GroupIndex) -> &str {
        &self.groups[index.get()].name
    }

    /// The first group named but never defined, as the message `apache2 -t` shows.
    pub(crate) fn check_groups_defined(&self) -> Result<(), String> {
        match self.groups.iter().find(|g| g.defined_at.is_none()) {
            Some(group) => Err(format!(
                "{}, which no RustAppDaemonProcess defines",
                group
                    .first_named_by
                    .as_deref()
                    .unwrap_or("a directive names a group")
            )),
            None => Ok(()),
        }
    }

    fn intern(&mut self, name: &str) -> GroupIndex {
        let index = match self.groups.iter().position(|g| g.name == name) {
            Some(i) => i,
            None => {
                self.groups.push(GroupName {
                    name: name.to_owned(),
                    defined_at: None,
                    first_named_by: None,
                });
                self.groups.len() - 1
            }
        };
        GroupIndex(index as u32)
    }
}

impl fmt::Display for AliasIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_has_one_index_whoever_names_it_first() {
        let mut tables = ConfigTables::default();
        let used = tables.name_group("shop", || {
            "RustAppAlias /x at a.conf:1 names process-group=shop".into()
        });
        let defined = tables.define_group("shop", "a.conf:9").unwrap();
        assert_eq!(used, defined);
        assert_eq!(tables.group_name(used), "shop");
        assert_eq!(tables.defined_group("shop"), Some(used));
        assert_eq!(tables.defined_group("other"), None);
        assert!(tables.check_groups_defined().is_ok());
    }

    #[test]
    fn undefined_and_twice_defined_groups_say_where() {
        let mut tables = ConfigTables::default();
        tables.name_group("nowhere", || {
            "RustAppAlias /x at a.conf:1 names process-group=nowhere".into()
        });
        let err = tables.check_groups_defined().unwrap_err();
        assert_eq!(
            err,
            "RustAppAlias /x at a.conf:1 names process-group=nowhere, which no RustAppDaemonProcess defines"
        );
        tables.define_group("g", "a.conf:2").unwrap();
        let err = tables.define_group("g", "b.conf:5").unwrap_err();
        assert!(err.contains("already defined at a.conf:2"), "{err}");
    }

    #[test]
    fn aliases_are_numbered_in_order() {
        let mut tables = ConfigTables::default();
        assert_eq!(tables.next_alias().get(), 0);
        assert_eq!(tables.next_alias().get(), 1);
        assert_eq!(tables.alias_count(), 2);
    }
}
