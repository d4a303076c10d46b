use std::sync::Arc;

use super::{Alias, SettingList};

/// Per-server (main server or virtual host) configuration.
#[derive(Default)]
pub(crate) struct ServerConfig {
    /// In match order: a virtual host's own aliases first, then the main server's.
    pub(crate) aliases: Vec<Arc<Alias>>,
    /// `RustAppSetting` lines; a virtual host inherits the main server's and overrides them.
    pub(crate) settings: SettingList,
}

impl super::Merge for ServerConfig {
    /// A virtual host's configuration on top of the main server's, as Apache merges them.
    /// Inherited aliases are the same `Alias` (one application instance per process).
    fn merge(base: &ServerConfig, add: &ServerConfig) -> ServerConfig {
        ServerConfig {
            aliases: add.aliases.iter().chain(&base.aliases).cloned().collect(),
            settings: base.settings.overridden_by(&add.settings),
        }
    }
}

impl ServerConfig {
    /// The alias serving `path` (decoded URL path), and where its `PATH_INFO` starts.
    pub(crate) fn route(&self, path: &[u8]) -> Option<(&Arc<Alias>, usize)> {
        self.aliases
            .iter()
            .find_map(|alias| alias.mount.match_path(path).map(|at| (alias, at)))
    }
}
