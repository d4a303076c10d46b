//! Every application of one configuration generation, by index: which library, mounted by
//! which server (whose error log and settings it gets). Built once the configuration is read.

use std::sync::Arc;

use super::{Alias, DaemonGroup, ServerConfig, SettingList};
use crate::ffi::Server;

/// An application as a serving process starts it.
pub(crate) struct AppEntry {
    pub(crate) alias: Arc<Alias>,
    /// The first server (the main server comes first) that mounts it.
    pub(crate) server: Server<'static>,
    /// `RustAppSetting`s of that server, with the alias line's own on top.
    pub(crate) settings: SettingList,
}

pub(crate) struct AppTable(Vec<Option<AppEntry>>);

impl AppTable {
    /// The applications of every server from `main` on, including user stores started for
    /// authentication alone.
    pub(crate) fn collect(main: Server<'static>, count: usize) -> AppTable {
        let mut apps: Vec<Option<AppEntry>> = (0..count).map(|_| None).collect();
        for server in main.and_following() {
            let Some(config) = server.module_config::<ServerConfig>() else {
                continue;
            };
            for alias in config.aliases.iter().chain(&config.user_stores) {
                if let Some(slot @ None) = apps.get_mut(alias.index.get()) {
                    *slot = Some(AppEntry {
                        alias: alias.clone(),
                        server,
                        settings: config.settings.overridden_by(&alias.settings),
                    });
                }
            }
        }
        AppTable(apps)
    }

    /// How many indices there are (some may be unused).
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// Every index in order, with its application if it has one.
    pub(crate) fn by_index(&self) -> impl Iterator<Item = Option<&AppEntry>> {
        self.0.iter().map(Option::as_ref)
    }
}

/// Every daemon group of the configuration, from the main server on.
pub(crate) fn daemon_groups(main: Server<'_>) -> Vec<Arc<DaemonGroup>> {
    main.and_following()
        .filter_map(|s| s.module_config::<ServerConfig>())
        .flat_map(|c| c.daemon_groups.iter().cloned())
        .collect()
}
