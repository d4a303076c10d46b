//! Configuration: directives parsed once, at configuration time, into typed values. Plain
//! data: no application instances, runtimes or sockets. Apart from the table of every
//! application ([`AppTable`]), nothing in here calls Apache, so it is unit-tested.

mod alias;
mod apps;
mod daemon;
mod directives;
mod per_dir;
mod per_server;
mod proxies;
mod settings;
mod tables;
mod user_store;

pub(crate) use alias::{Alias, MountPoint};
pub(crate) use apps::{AppEntry, AppTable, daemon_groups};
pub(crate) use daemon::{DaemonGroup, parse_daemon_group, parse_group_reference};
pub(crate) use directives::{
    rust_app_alias, rust_app_buffer_request_body, rust_app_daemon_process, rust_app_max_tunnels,
    rust_app_process_group, rust_app_sendfile_root, rust_app_setting, rust_app_slow_request_log,
    rust_app_stream_idle_timeout,
};
pub(crate) use per_dir::DirConfig;
pub(crate) use per_server::ServerConfig;
pub(crate) use proxies::{Network, ProxyHeader};
pub(crate) use settings::SettingList;
pub(crate) use tables::{AliasIndex, ConfigTables, GroupIndex};
pub(crate) use user_store::{GroupNames, UserStoreRef, parse_user_store_ref, register_user_store};
