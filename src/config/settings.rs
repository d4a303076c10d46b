/// Named settings with unique names in first-set order; a later value replaces an earlier one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct SettingList(Vec<(String, String)>);

impl SettingList {
    pub(crate) fn set(&mut self, name: &str, value: &str) {
        match self.0.iter_mut().find(|(n, _)| n == name) {
            Some(entry) => entry.1 = value.to_owned(),
            None => self.0.push((name.to_owned(), value.to_owned())),
        }
    }

    /// These settings with `overrides` applied on top.
    pub(crate) fn overridden_by(&self, overrides: &SettingList) -> SettingList {
        let mut merged = self.clone();
        for (name, value) in &overrides.0 {
            merged.set(name, value);
        }
        merged
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    #[cfg(test)]
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_values_replace_earlier_ones_in_place() {
        let mut list = SettingList::default();
        list.set("A", "1");
        list.set("B", "2");
        list.set("A", "3");
        assert_eq!(list.iter().collect::<Vec<_>>(), [("A", "3"), ("B", "2")]);
    }

    #[test]
    fn overrides_win_and_keep_the_rest() {
        let mut base = SettingList::default();
        base.set("A", "base");
        base.set("B", "base");
        let mut top = SettingList::default();
        top.set("B", "top");
        top.set("C", "top");
        let merged = base.overridden_by(&top);
        assert_eq!(merged.get("A"), Some("base"));
        assert_eq!(merged.get("B"), Some("top"));
        assert_eq!(merged.get("C"), Some("top"));
    }
}
