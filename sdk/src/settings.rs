use crate::abi;

/// An instance's configuration: the `RustAppSetting` pairs of its virtual host, overridden by
/// the `setting=NAME=VALUE` options of its `RustAppAlias` line, plus where it is mounted.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    mount_point: String,
    library_path: String,
    pairs: Vec<(String, String)>,
}

impl Settings {
    /// Builds settings by hand, e.g. to test an application without Apache.
    pub fn new(mount_point: &str, pairs: &[(&str, &str)]) -> Settings {
        Settings {
            mount_point: mount_point.to_owned(),
            library_path: String::new(),
            pairs: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    /// # Safety
    /// `config` must be a valid `AppConfigV1` from the host, during `create`.
    pub(crate) unsafe fn from_abi(config: &abi::AppConfigV1) -> Settings {
        let text = |s: abi::Str| {
            // SAFETY: the host guarantees the strings live for the duration of `create`.
            String::from_utf8_lossy(unsafe { s.as_bytes() }).into_owned()
        };
        let raw = if config.settings_len == 0 {
            &[][..]
        } else {
            // SAFETY: the host passes `settings_len` valid entries.
            unsafe { std::slice::from_raw_parts(config.settings, config.settings_len) }
        };
        Settings {
            mount_point: text(config.mount_point),
            library_path: text(config.library_path),
            pairs: raw.iter().map(|s| (text(s.name), text(s.value))).collect(),
        }
    }

    /// The value of setting `name`, if configured.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of a setting the application cannot start without.
    pub fn require(&self, name: &str) -> Result<&str, crate::Error> {
        self.get(name).ok_or_else(|| {
            format!("the setting {name} is required: add `RustAppSetting {name} VALUE` or `setting={name}=VALUE` to the RustAppAlias line").into()
        })
    }

    /// A setting parsed as `T` (a number, a flag, an address, ...): `Ok(None)` when unset, an
    /// error naming the setting and the bad value when it does not parse.
    pub fn parse<T>(&self, name: &str) -> Result<Option<T>, crate::Error>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        self.get(name)
            .map(|value| {
                value
                    .parse()
                    .map_err(|e| format!("the setting {name}={value:?} is not valid: {e}").into())
            })
            .transpose()
    }

    /// Every setting, in configuration order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The URL path the application is mounted at (empty for `/`).
    pub fn mount_point(&self) -> &str {
        &self.mount_point
    }

    /// The path of the application library as configured.
    pub fn library_path(&self) -> &str {
        &self.library_path
    }

    /// A variable of the process environment; in daemon mode that is the process group's `env`.
    pub fn env(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}
