use std::sync::{Arc, OnceLock};

use super::{Alias, DaemonGroup, SettingList};

/// Per-server (main server or virtual host) configuration.
#[derive(Default)]
pub(crate) struct ServerConfig {
    /// In match order: a virtual host's own aliases first, then the main server's.
    pub(crate) aliases: Vec<Arc<Alias>>,
    /// `RustAppSetting` lines; a virtual host inherits the main server's and overrides them.
    pub(crate) settings: SettingList,
    /// `RustAppDaemonProcess` groups defined in this server (names are unique across servers).
    pub(crate) daemon_groups: Vec<Arc<DaemonGroup>>,
    /// `RustAppRestrictEmbedded`; inherited by virtual hosts.
    pub(crate) restrict_embedded: Option<bool>,
    /// `RustAppSocketPrefix` (read from the main server).
    pub(crate) socket_prefix: Option<String>,
    /// In the main server's record: the daemon groups started for this generation.
    pub(crate) daemons: OnceLock<Arc<crate::daemon::DaemonRuntime>>,
}

impl super::Merge for ServerConfig {
    /// A virtual host's configuration on top of the main server's, as Apache merges them.
    /// Inherited aliases are the same `Alias` (one application instance per process).
    fn merge(base: &ServerConfig, add: &ServerConfig) -> ServerConfig {
        ServerConfig {
            aliases: add.aliases.iter().chain(&base.aliases).cloned().collect(),
            settings: base.settings.overridden_by(&add.settings),
            daemon_groups: add.daemon_groups.clone(),
            restrict_embedded: add.restrict_embedded.or(base.restrict_embedded),
            socket_prefix: add
                .socket_prefix
                .clone()
                .or_else(|| base.socket_prefix.clone()),
            daemons: OnceLock::new(),
        }
    }
}

impl ServerConfig {
    /// Checks, across all servers, that daemon group names are unique and that every
    /// `process-group=` names a defined group (`apache2 -t` reports the first problem).
    pub(crate) fn check_daemon_groups<'a>(
        servers: impl Iterator<Item = &'a ServerConfig> + Clone,
    ) -> Result<(), String> {
        let mut seen: Vec<&DaemonGroup> = Vec::new();
        for group in servers.clone().flat_map(|s| &s.daemon_groups) {
            if let Some(first) = seen
                .iter()
                .find(|g| g.name == group.name && g.defined_at != group.defined_at)
            {
                return Err(format!(
                    "RustAppDaemonProcess {} at {} is already defined at {}; group names must be unique",
                    group.name, group.defined_at, first.defined_at
                ));
            }
            seen.push(group);
        }
        for alias in servers.flat_map(|s| &s.aliases) {
            if let Some(name) = &alias.process_group {
                if !seen.iter().any(|g| &g.name == name) {
                    return Err(format!(
                        "RustAppAlias {} at {} names process-group={name}, which no RustAppDaemonProcess defines",
                        alias.mount, alias.defined_at
                    ));
                }
            }
        }
        Ok(())
    }

    /// The alias serving `path` (decoded URL path), and where its `PATH_INFO` starts.
    pub(crate) fn route(&self, path: &[u8]) -> Option<(&Arc<Alias>, usize)> {
        self.aliases
            .iter()
            .find_map(|alias| alias.mount.match_path(path).map(|at| (alias, at)))
    }
}
