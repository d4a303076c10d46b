use std::ffi::CString;

use super::{AliasIndex, GroupIndex, SettingList};

/// The URL path an application is mounted at, without a trailing slash (empty for `/`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MountPoint(String);

impl MountPoint {
    pub(crate) fn parse(url_path: &str) -> Result<MountPoint, String> {
        if !url_path.starts_with('/') {
            return Err(format!(
                "the URL path '{url_path}' must start with '/', e.g. /hello or /"
            ));
        }
        if url_path.contains("//") || url_path.split('/').any(|s| s == "." || s == "..") {
            return Err(format!(
                "the URL path '{url_path}' must be a plain path without '//', '.' or '..' segments"
            ));
        }
        Ok(MountPoint(url_path.trim_end_matches('/').to_owned()))
    }

    /// `SCRIPT_NAME` of requests below it: empty for the root.
    pub(crate) fn script_name(&self) -> &str {
        &self.0
    }

    /// Where `PATH_INFO` starts in `path` if the path is at or below this mount point:
    /// `/hello` serves `/hello` and `/hello/...`, not `/helloworld`.
    pub(crate) fn match_path(&self, path: &[u8]) -> Option<usize> {
        let mount = self.0.as_bytes();
        let below =
            path.starts_with(mount) && (path.len() == mount.len() || path[mount.len()] == b'/');
        below.then_some(mount.len())
    }
}

impl std::fmt::Display for MountPoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "/" } else { &self.0 })
    }
}

/// One `RustAppAlias`: an application library mounted at a URL path.
#[derive(Debug)]
pub(crate) struct Alias {
    /// Its number in this configuration: runtime state (instances, daemon requests) is kept
    /// by it.
    pub(crate) index: AliasIndex,
    pub(crate) mount: MountPoint,
    pub(crate) library: String,
    /// The library path as a C string, for `r->filename`.
    pub(crate) library_c: CString,
    /// The alias line's own `setting=` options; they win over `RustAppSetting`.
    pub(crate) settings: SettingList,
    /// `file:line` of the directive, for messages.
    pub(crate) defined_at: String,
    /// The alias line's `process-group=` option.
    pub(crate) process_group: Option<GroupIndex>,
    /// The alias line's `stream-idle-timeout=`: how long a response may wait with nothing to
    /// send (a `RustAppStreamIdleTimeout` of the location wins).
    pub(crate) stream_idle_timeout: Option<std::time::Duration>,
    /// Started only to answer `RustAppAuthUser`/`RustAppAuthGroup` checks; serves no URL.
    pub(crate) authentication_only: bool,
}

impl Alias {
    pub(crate) fn new(
        index: AliasIndex,
        mount: MountPoint,
        library: String,
        settings: SettingList,
        defined_at: String,
        process_group: Option<GroupIndex>,
    ) -> Result<Alias, String> {
        let library_c = CString::new(library.clone())
            .map_err(|_| format!("the library path '{library}' contains a NUL byte"))?;
        Ok(Alias {
            index,
            mount,
            library,
            library_c,
            settings,
            defined_at,
            process_group,
            stream_idle_timeout: None,
            authentication_only: false,
        })
    }

    /// The same library started only for its user store.
    pub(crate) fn for_authentication_only(self) -> Alias {
        Alias {
            authentication_only: true,
            ..self
        }
    }
}

impl std::fmt::Display for Alias {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.authentication_only {
            write!(
                f,
                "user store {} (RustAppAuthUser at {})",
                self.library, self.defined_at
            )
        } else {
            write!(f, "application {} at {}", self.library, self.mount)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_match_whole_segments() {
        let hello = MountPoint::parse("/hello").unwrap();
        assert_eq!(hello.match_path(b"/hello"), Some(6));
        assert_eq!(hello.match_path(b"/hello/a/b"), Some(6));
        assert_eq!(hello.match_path(b"/helloworld"), None);
        assert_eq!(hello.match_path(b"/"), None);
    }

    #[test]
    fn root_mount_serves_everything_with_empty_script_name() {
        let root = MountPoint::parse("/").unwrap();
        assert_eq!(root.script_name(), "");
        assert_eq!(root.match_path(b"/anything"), Some(0));
        assert_eq!(root.to_string(), "/");
    }

    #[test]
    fn trailing_slashes_are_dropped() {
        assert_eq!(MountPoint::parse("/app/").unwrap().script_name(), "/app");
    }

    #[test]
    fn bad_mount_points_say_what_is_allowed() {
        assert!(
            MountPoint::parse("hello")
                .unwrap_err()
                .contains("must start with '/'")
        );
        assert!(MountPoint::parse("/a/../b").unwrap_err().contains("'..'"));
    }
}
