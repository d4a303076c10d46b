//! Per-directory (`<Location>`, `<Directory>`, `.htaccess`) configuration.

use std::sync::Arc;
use std::time::Duration;

use super::{GroupIndex, UserStoreRef};
use crate::ffi::ConfigRecord;

#[derive(Clone, Debug, Default)]
pub(crate) struct DirConfig {
    /// `RustAppPassAuthorization`: unset inherits, the default is Off.
    pub(crate) pass_authorization: Option<bool>,
    /// `RustAppProcessGroup` for this location.
    pub(crate) process_group: Option<GroupIndex>,
    /// `RustAppStreamIdleTimeout`: how long a response may wait with nothing to send.
    pub(crate) stream_idle_timeout: Option<Duration>,
    /// `RustAppBufferRequestBody`: how many bytes of a request body are read before a daemon
    /// is asked (`u64::MAX`: On, the whole body; 0: Off). Unset inherits; the default is On.
    pub(crate) buffer_request_body: Option<u64>,
    /// `RustAppAuthUser`: whose users `AuthBasicProvider rustapp` checks.
    pub(crate) auth_user: Option<Arc<UserStoreRef>>,
    /// `RustAppAuthGroup`: whose groups `Require rustapp-group` asks (default: `auth_user`'s).
    pub(crate) auth_group: Option<Arc<UserStoreRef>>,
    /// `RustAppErrorOverride`: Apache's error handling (`ErrorDocument`) replaces the body of
    /// an application's 4xx and 5xx answers. Default Off.
    pub(crate) error_override: Option<bool>,
    /// `RustAppSendfileRoot`: the directories (resolved) under which an application may name
    /// a file for Apache to send (`X-Sendfile`). None: no file handoff.
    pub(crate) sendfile_roots: Option<Arc<Vec<std::path::PathBuf>>>,
    /// `RustAppSlowRequestLog`: requests taking longer are logged once (zero: none). Unset
    /// inherits; the default is none.
    pub(crate) slow_request_log: Option<Duration>,
}

impl ConfigRecord for DirConfig {
    fn merge(base: &DirConfig, add: &DirConfig) -> DirConfig {
        DirConfig {
            pass_authorization: add.pass_authorization.or(base.pass_authorization),
            process_group: add.process_group.or(base.process_group),
            stream_idle_timeout: add.stream_idle_timeout.or(base.stream_idle_timeout),
            buffer_request_body: add.buffer_request_body.or(base.buffer_request_body),
            auth_user: add.auth_user.clone().or_else(|| base.auth_user.clone()),
            auth_group: add.auth_group.clone().or_else(|| base.auth_group.clone()),
            error_override: add.error_override.or(base.error_override),
            sendfile_roots: add
                .sendfile_roots
                .clone()
                .or_else(|| base.sendfile_roots.clone()),
            slow_request_log: add.slow_request_log.or(base.slow_request_log),
        }
    }
}

impl DirConfig {
    /// Up to how many bytes of a request body are read before a daemon group is asked (so
    /// that slow uploads hold no daemon thread): all of it unless configured; applications
    /// that must see an upload as it arrives set a limit, or turn it off, for their location.
    pub(crate) fn request_body_buffer_limit(dir: Option<&DirConfig>) -> u64 {
        dir.and_then(|d| d.buffer_request_body).unwrap_or(u64::MAX)
    }

    /// How long a response of `alias` may wait with nothing to send here, if limited: the
    /// location's `RustAppStreamIdleTimeout`, else the alias line's `stream-idle-timeout=`.
    pub(crate) fn stream_idle_timeout(
        dir: Option<&DirConfig>,
        alias: &super::Alias,
    ) -> Option<Duration> {
        dir.and_then(|d| d.stream_idle_timeout)
            .or(alias.stream_idle_timeout)
    }

    /// How long a request here may take before it is logged as slow, if it is watched.
    pub(crate) fn slow_request_threshold(dir: Option<&DirConfig>) -> Option<Duration> {
        dir.and_then(|d| d.slow_request_log)
            .filter(|limit| !limit.is_zero())
    }

    /// Whether Apache's error handling replaces an application's error bodies here.
    pub(crate) fn overrides_errors(dir: Option<&DirConfig>) -> bool {
        dir.and_then(|d| d.error_override).unwrap_or(false)
    }

    /// Where applications here may name files for Apache to send (`RustAppSendfileRoot`).
    pub(crate) fn sendfile_roots(dir: Option<&DirConfig>) -> &[std::path::PathBuf] {
        dir.and_then(|d| d.sendfile_roots.as_deref())
            .map_or(&[], Vec::as_slice)
    }

    /// Whether the `Authorization` header reaches the application. Off unless configured, so a
    /// password Apache checked is not handed to application code by accident.
    pub(crate) fn passes_authorization(&self) -> bool {
        self.pass_authorization.unwrap_or(false)
    }
}
