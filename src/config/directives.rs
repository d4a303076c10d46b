//! The directives' argument parsing. Each returns the message `apache2 -t` shows on error:
//! what is wrong and what is allowed.

use std::sync::Arc;

use super::daemon::seconds;
use super::{
    Alias, ConfigTables, GroupIndex, MountPoint, ServerConfig, SettingList, parse_daemon_group,
    parse_group_reference,
};

const ALIAS_USAGE: &str = "RustAppAlias takes a URL path and an application library: \
     RustAppAlias /url-path /path/to/libapp.so [setting=NAME=VALUE ...] [process-group=NAME]";

/// `RustAppAlias URL-PATH LIBRARY [setting=NAME=VALUE ...]`.
/// `resolve` turns a relative library path into one under ServerRoot.
pub(crate) fn rust_app_alias(
    config: &mut ServerConfig,
    tables: &mut ConfigTables,
    args: &[&str],
    resolve: impl Fn(&str) -> String,
    defined_at: String,
) -> Result<(), String> {
    let [url_path, library, options @ ..] = args else {
        return Err(ALIAS_USAGE.to_owned());
    };
    let mount = MountPoint::parse(url_path).map_err(|e| format!("RustAppAlias: {e}"))?;
    let library = resolve(library);
    check_library_file(&library).map_err(|e| format!("RustAppAlias {mount}: {e}"))?;

    let mut settings = SettingList::default();
    let mut process_group = None;
    let mut stream_idle_timeout = None;
    for option in options {
        if let Some(pair) = option.strip_prefix("setting=") {
            let (name, value) = parse_setting_pair(pair)
                .map_err(|e| format!("RustAppAlias {mount}: option '{option}': {e}"))?;
            settings.set(name, value);
        } else if let Some(limit) = option.strip_prefix("stream-idle-timeout=") {
            stream_idle_timeout = Some(
                seconds(limit)
                    .map_err(|e| format!("RustAppAlias {mount}: option '{option}': {e}"))?,
            );
        } else if let Some(group) = option.strip_prefix("process-group=") {
            let directive = format!("RustAppAlias {mount}");
            let name = parse_group_reference(group, &directive)?;
            process_group = Some(tables.name_group(name, || {
                format!("{directive} at {defined_at} names process-group={name}")
            }));
        } else {
            return Err(format!(
                "RustAppAlias {mount}: unknown option '{option}'; allowed: setting=NAME=VALUE (repeatable), process-group=NAME, stream-idle-timeout=SECONDS"
            ));
        }
    }

    if let Some(existing) = config.aliases.iter().find(|a| a.mount == mount) {
        return Err(format!(
            "RustAppAlias {mount} is already defined in this server at {}; each URL path can be mounted once per virtual host",
            existing.defined_at
        ));
    }
    let mut alias = Alias::new(
        tables.next_alias(),
        mount,
        library,
        settings,
        defined_at,
        process_group,
    )?;
    alias.stream_idle_timeout = stream_idle_timeout;
    config.aliases.push(Arc::new(alias));
    Ok(())
}

/// `RustAppSetting NAME VALUE`.
pub(crate) fn rust_app_setting(
    config: &mut ServerConfig,
    name: &str,
    value: &str,
) -> Result<(), String> {
    check_setting_name(name).map_err(|e| format!("RustAppSetting: {e}"))?;
    config.settings.set(name, value);
    Ok(())
}

/// `RustAppDaemonProcess NAME [options]`.
pub(crate) fn rust_app_daemon_process(
    config: &mut ServerConfig,
    tables: &mut ConfigTables,
    args: &[&str],
    defined_at: String,
) -> Result<(), String> {
    let group = parse_daemon_group(tables, args, defined_at, |path| {
        std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))
    })?;
    config.daemon_groups.push(Arc::new(group));
    Ok(())
}

/// `RustAppBufferRequestBody On|Off|BYTES`: how much of a request body is read before a daemon
/// is asked.
pub(crate) fn rust_app_buffer_request_body(value: &str) -> Result<u64, String> {
    match value.to_ascii_lowercase().as_str() {
        "on" => Ok(u64::MAX),
        "off" => Ok(0),
        bytes => bytes.parse().map_err(|_| {
            format!(
                "RustAppBufferRequestBody: '{value}' is not On, Off or a number of bytes (bodies up to that size are read whole; larger ones stream)"
            )
        }),
    }
}

/// `RustAppSendfileRoot DIR ...`: absolute, existing directories, resolved (symbolic links
/// followed) so that a named file's real path can be checked against them.
pub(crate) fn rust_app_sendfile_root(dirs: &[&str]) -> Result<Vec<std::path::PathBuf>, String> {
    dirs.iter()
        .map(|dir| {
            let path = std::path::Path::new(dir);
            let resolved = path
                .is_absolute()
                .then(|| std::fs::canonicalize(path).ok())
                .flatten()
                .filter(|p| p.is_dir());
            resolved.ok_or_else(|| {
                format!(
                    "RustAppSendfileRoot: '{dir}' is not an absolute path to an existing directory (the directories under which applications may name files for Apache to send)"
                )
            })
        })
        .collect()
}

/// `RustAppMaxTunnels N`: upgraded connections one Apache child relays at once.
pub(crate) fn rust_app_max_tunnels(value: &str) -> Result<usize, String> {
    value.parse().ok().filter(|&n: &usize| n > 0).ok_or_else(|| {
        format!(
            "RustAppMaxTunnels: '{value}' is not a whole number of at least 1 (upgraded connections each Apache child relays at once)"
        )
    })
}

/// `RustAppStreamIdleTimeout SECONDS` (for a server or a location).
pub(crate) fn rust_app_stream_idle_timeout(value: &str) -> Result<std::time::Duration, String> {
    seconds(value).map_err(|e| format!("RustAppStreamIdleTimeout: {e}"))
}

/// `RustAppSlowRequestLog SECONDS|Off` (for a server or a location): requests that take longer
/// are logged once; Off (a zero duration) logs none.
pub(crate) fn rust_app_slow_request_log(value: &str) -> Result<std::time::Duration, String> {
    if value.eq_ignore_ascii_case("off") {
        return Ok(std::time::Duration::ZERO);
    }
    value
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0 && *s <= 86_400.0)
        .map(std::time::Duration::from_secs_f64)
        .ok_or_else(|| {
            format!(
                "RustAppSlowRequestLog: '{value}' is not Off or a number of seconds above 0 (such as 2 or 0.5)"
            )
        })
}

/// `RustAppProcessGroup NAME` (for a server or a location).
pub(crate) fn rust_app_process_group(
    tables: &mut ConfigTables,
    name: &str,
    defined_at: &str,
) -> Result<GroupIndex, String> {
    let name = parse_group_reference(name, "RustAppProcessGroup")?;
    Ok(tables.name_group(name, || {
        format!("RustAppProcessGroup at {defined_at} names daemon group {name}")
    }))
}

fn parse_setting_pair(pair: &str) -> Result<(&str, &str), String> {
    let (name, value) = pair
        .split_once('=')
        .ok_or_else(|| "expected setting=NAME=VALUE".to_owned())?;
    check_setting_name(name)?;
    Ok((name, value))
}

fn check_setting_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name
            .chars()
            .any(|c| c.is_whitespace() || c == '=' || c.is_control())
    {
        return Err(format!(
            "the setting name '{name}' must be non-empty, without spaces, '=' or control characters"
        ));
    }
    Ok(())
}

pub(super) fn check_library_file(path: &str) -> Result<(), String> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => Ok(()),
        Ok(_) => Err(format!(
            "the application library {path} is not a regular file; give the path of a library built as a cdylib, e.g. target/release/libhello.so"
        )),
        Err(e) => Err(format!(
            "the application library {path} cannot be used ({e}); give the path of a library built as a cdylib, e.g. target/release/libhello.so"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::ConfigRecord;

    fn existing_library() -> String {
        // Any existing regular file will do for the configuration-time check.
        std::env::current_exe().unwrap().display().to_string()
    }

    fn alias(config: &mut ServerConfig, args: &[&str]) -> Result<(), String> {
        let mut tables = ConfigTables::default();
        rust_app_alias(
            config,
            &mut tables,
            args,
            str::to_owned,
            "test.conf:1".into(),
        )
    }

    #[test]
    fn alias_with_settings_is_recorded() {
        let lib = existing_library();
        let mut config = ServerConfig::default();
        alias(
            &mut config,
            &[
                "/hello",
                &lib,
                "setting=GREETING=hi=there",
                "setting=EMPTY=",
            ],
        )
        .unwrap();
        let a = &config.aliases[0];
        assert_eq!(a.mount.script_name(), "/hello");
        assert_eq!(a.settings.get("GREETING"), Some("hi=there"));
        assert_eq!(a.settings.get("EMPTY"), Some(""));
    }

    #[test]
    fn missing_library_names_the_path() {
        let err = alias(&mut ServerConfig::default(), &["/x", "/no/such/libapp.so"]).unwrap_err();
        assert!(err.contains("/no/such/libapp.so"), "{err}");
        assert!(err.contains("No such file"), "{err}");
    }

    #[test]
    fn unknown_option_lists_the_allowed_ones() {
        let lib = existing_library();
        let err = alias(&mut ServerConfig::default(), &["/x", &lib, "threads=4"]).unwrap_err();
        assert!(err.contains("unknown option 'threads=4'"), "{err}");
        assert!(err.contains("setting=NAME=VALUE"), "{err}");
    }

    #[test]
    fn too_few_arguments_show_usage() {
        let err = alias(&mut ServerConfig::default(), &["/x"]).unwrap_err();
        assert!(err.starts_with("RustAppAlias takes"), "{err}");
    }

    #[test]
    fn the_same_mount_twice_is_refused() {
        let lib = existing_library();
        let mut config = ServerConfig::default();
        alias(&mut config, &["/x", &lib]).unwrap();
        let err = alias(&mut config, &["/x/", &lib]).unwrap_err();
        assert!(
            err.contains("already defined") && err.contains("test.conf:1"),
            "{err}"
        );
    }

    #[test]
    fn request_body_buffering_is_on_off_or_a_size() {
        assert_eq!(rust_app_buffer_request_body("On"), Ok(u64::MAX));
        assert_eq!(rust_app_buffer_request_body("off"), Ok(0));
        assert_eq!(rust_app_buffer_request_body("1048576"), Ok(1 << 20));
        let err = rust_app_buffer_request_body("lots").unwrap_err();
        assert!(
            err.contains("'lots' is not On, Off or a number of bytes"),
            "{err}"
        );
    }

    #[test]
    fn setting_names_are_checked() {
        let mut config = ServerConfig::default();
        assert!(rust_app_setting(&mut config, "A B", "v").is_err());
        rust_app_setting(&mut config, "A", "v").unwrap();
        assert_eq!(config.settings.get("A"), Some("v"));
    }

    #[test]
    fn virtual_hosts_put_their_own_aliases_first() {
        let lib = existing_library();
        let mut main = ServerConfig::default();
        alias(&mut main, &["/", &lib]).unwrap();
        let mut vhost = ServerConfig::default();
        alias(&mut vhost, &["/api", &lib]).unwrap();
        let merged = ServerConfig::merge(&main, &vhost);
        let (hit, at) = merged.route(b"/api/x").unwrap();
        assert_eq!((hit.mount.script_name(), at), ("/api", 4));
        let (hit, _) = merged.route(b"/other").unwrap();
        assert_eq!(hit.mount.script_name(), "");
    }
}
