//! Configuration: directives parsed once, at configuration time, into typed values.
//! Nothing in here calls Apache, so all of it is unit-tested.

mod alias;
mod dir;
mod directives;
mod server;
mod settings;

pub(crate) use alias::{Alias, MountPoint};
pub(crate) use dir::DirConfig;
pub(crate) use directives::{rust_app_alias, rust_app_setting};
pub(crate) use server::ServerConfig;
pub(crate) use settings::SettingList;
