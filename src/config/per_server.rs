//! Per-server (main server or virtual host) configuration.

use std::sync::Arc;

use super::proxies::{Network, ProxyHeader};
use super::{Alias, DaemonGroup, SettingList, UserStoreRef};
use crate::ffi::ConfigRecord;

#[derive(Default)]
pub(crate) struct ServerConfig {
    /// In match order: a virtual host's own aliases first, then the main server's.
    pub(crate) aliases: Vec<Arc<Alias>>,
    /// `RustAppSetting` lines; a virtual host inherits the main server's and overrides them.
    pub(crate) settings: SettingList,
    /// Applications started only for `RustAppAuthUser`/`RustAppAuthGroup` (a library no
    /// `RustAppAlias` of this server mounts), in configuration order.
    pub(crate) user_stores: Vec<Arc<Alias>>,
    /// `RustAppDaemonProcess` groups defined in this server (names are unique across servers).
    pub(crate) daemon_groups: Vec<Arc<DaemonGroup>>,
    /// `RustAppRestrictEmbedded`; inherited by virtual hosts.
    pub(crate) restrict_embedded: Option<bool>,
    /// `RustAppSocketPrefix` (read from the main server).
    pub(crate) socket_prefix: Option<String>,
    /// `RustAppFigures` (read from the main server).
    pub(crate) figures: Option<bool>,
    /// `RustAppMaxTunnels`; inherited by virtual hosts.
    pub(crate) max_tunnels: Option<usize>,
    /// `RustAppTrustedProxies`; inherited by virtual hosts.
    pub(crate) trusted_proxies: Option<Vec<Network>>,
    /// `RustAppTrustedProxyHeaders`; inherited by virtual hosts.
    pub(crate) trusted_proxy_headers: Option<Vec<ProxyHeader>>,
}

impl ConfigRecord for ServerConfig {
    /// A virtual host's configuration on top of the main server's, as Apache merges them.
    /// Inherited aliases are the same `Alias` (one application instance per process).
    fn merge(base: &ServerConfig, add: &ServerConfig) -> ServerConfig {
        ServerConfig {
            aliases: add.aliases.iter().chain(&base.aliases).cloned().collect(),
            settings: base.settings.overridden_by(&add.settings),
            user_stores: add
                .user_stores
                .iter()
                .chain(&base.user_stores)
                .cloned()
                .collect(),
            daemon_groups: add.daemon_groups.clone(),
            restrict_embedded: add.restrict_embedded.or(base.restrict_embedded),
            socket_prefix: add
                .socket_prefix
                .clone()
                .or_else(|| base.socket_prefix.clone()),
            figures: add.figures.or(base.figures),
            max_tunnels: add.max_tunnels.or(base.max_tunnels),
            trusted_proxies: add
                .trusted_proxies
                .clone()
                .or_else(|| base.trusted_proxies.clone()),
            trusted_proxy_headers: add
                .trusted_proxy_headers
                .clone()
                .or_else(|| base.trusted_proxy_headers.clone()),
        }
    }
}

impl ServerConfig {
    /// The headers through which trusted proxies speak here (`RustAppTrustedProxyHeaders`).
    pub(crate) fn proxy_headers(&self) -> &[ProxyHeader] {
        self.trusted_proxy_headers.as_deref().unwrap_or_default()
    }

    /// Whether `peer` is one of `RustAppTrustedProxies`.
    pub(crate) fn trusts_proxy(&self, peer: std::net::IpAddr) -> bool {
        self.trusted_proxies
            .as_deref()
            .unwrap_or_default()
            .iter()
            .any(|network| network.contains(peer))
    }

    /// How many tunnels one Apache child relays at once: `RustAppMaxTunnels`, else half of
    /// its `threads` (so upgraded connections cannot take every thread).
    pub(crate) fn max_tunnels(&self, threads: usize) -> usize {
        self.max_tunnels.unwrap_or(threads.div_ceil(2))
    }

    /// Whether figures are kept (`RustAppFigures`, on unless turned off).
    pub(crate) fn keeps_figures(&self) -> bool {
        self.figures != Some(false)
    }

    /// Whether `RustAppRestrictEmbedded On` forbids running applications inside Apache here.
    pub(crate) fn embedding_forbidden(&self) -> bool {
        self.restrict_embedded == Some(true)
    }

    /// The application that answers checks for `store`: a `RustAppAlias` of its library if
    /// this server has one, else the instance started for authentication alone.
    pub(crate) fn user_store(&self, store: &UserStoreRef) -> Option<&Arc<Alias>> {
        self.aliases
            .iter()
            .chain(&self.user_stores)
            .find(|app| store.is_served_by(app))
    }

    /// Whether an authentication-only instance is ever asked here: not when a `RustAppAlias`
    /// of the same library serves its checks.
    pub(crate) fn asks_user_store(&self, app: &Alias) -> bool {
        let store = UserStoreRef {
            library: app.library.clone(),
            process_group: app.process_group,
            defined_at: String::new(),
        };
        self.user_store(&store)
            .is_some_and(|found| std::ptr::eq(Arc::as_ptr(found), app))
    }

    /// The alias serving `path` (decoded URL path), and where its `PATH_INFO` starts.
    pub(crate) fn route(&self, path: &[u8]) -> Option<(&Arc<Alias>, usize)> {
        self.aliases
            .iter()
            .find_map(|alias| alias.mount.match_path(path).map(|at| (alias, at)))
    }
}
