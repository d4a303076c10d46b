//! Per-directory (`<Location>`, `<Directory>`, `.htaccess`) configuration.

use std::sync::Arc;

use super::{GroupIndex, UserStoreRef};
use crate::ffi::ConfigRecord;

#[derive(Clone, Debug, Default)]
pub(crate) struct DirConfig {
    /// `RustAppPassAuthorization`: unset inherits, the default is Off.
    pub(crate) pass_authorization: Option<bool>,
    /// `RustAppProcessGroup` for this location.
    pub(crate) process_group: Option<GroupIndex>,
    /// `RustAppAuthUser`: whose users `AuthBasicProvider rustapp` checks.
    pub(crate) auth_user: Option<Arc<UserStoreRef>>,
    /// `RustAppAuthGroup`: whose groups `Require rustapp-group` asks (default: `auth_user`'s).
    pub(crate) auth_group: Option<Arc<UserStoreRef>>,
}

impl ConfigRecord for DirConfig {
    fn merge(base: &DirConfig, add: &DirConfig) -> DirConfig {
        DirConfig {
            pass_authorization: add.pass_authorization.or(base.pass_authorization),
            process_group: add.process_group.or(base.process_group),
            auth_user: add.auth_user.clone().or_else(|| base.auth_user.clone()),
            auth_group: add.auth_group.clone().or_else(|| base.auth_group.clone()),
        }
    }
}

impl DirConfig {
    /// Whether the `Authorization` header reaches the application. Off unless configured, so a
    /// password Apache checked is not handed to application code by accident.
    pub(crate) fn passes_authorization(&self) -> bool {
        self.pass_authorization.unwrap_or(false)
    }
}
