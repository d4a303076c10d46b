//! Configuration: directives parsed once, at configuration time, into typed values.
//! Nothing in here calls Apache, so all of it is unit-tested.

mod alias;
mod daemon;
mod dir;
mod directives;
mod server;
mod settings;
mod user_store;

pub(crate) use alias::{Alias, MountPoint};
pub(crate) use daemon::{DaemonGroup, parse_daemon_group, parse_group_reference};
pub(crate) use dir::DirConfig;
pub(crate) use directives::{rust_app_alias, rust_app_daemon_process, rust_app_setting};
pub(crate) use server::ServerConfig;
pub(crate) use settings::SettingList;
pub(crate) use user_store::{UserStoreRef, parse_user_store_ref, register_user_store};

/// A configuration record Apache merges: a virtual host's over the main server's, or a
/// directory's over its parent's.
pub(crate) trait Merge: Default + 'static {
    fn merge(base: &Self, add: &Self) -> Self;
}
