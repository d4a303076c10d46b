//! `RustAppDaemonProcess NAME [options]`: a group of daemon processes serving applications
//! under their own user, with their own environment.

use std::time::Duration;

use super::{ConfigTables, GroupIndex, SettingList};

const ALLOWED: &str = "processes=N|MIN-MAX, threads=N, idle-timeout=SECONDS, queue-limit=N, user=NAME, group=NAME, home=DIR, umask=0NNN, \
display-name=NAME|%{GROUP}, env=KEY=VALUE, env-file=PATH, connect-timeout=SECONDS, \
socket-timeout=SECONDS, listen-backlog=N, maximum-requests=N, inactivity-timeout=SECONDS, \
graceful-timeout=SECONDS, request-timeout=SECONDS, queue-timeout=SECONDS, shutdown-timeout=SECONDS, \
startup-timeout=SECONDS, max-tunnels=N, restart-interval=SECONDS, restart-file=PATH, \
memory-limit=BYTES[K|M|G], cpu-time-limit=SECONDS, stack-size=BYTES[K|M], cpu-priority=-20..19, \
supplementary-groups=GROUP[,GROUP...]";

/// One daemon process group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DaemonGroup {
    /// The group's number in this configuration (see [`ConfigTables`]).
    pub(crate) index: GroupIndex,
    pub(crate) name: String,
    /// Processes in the group (default 1); in an elastic group (`processes=MIN-MAX`), MAX.
    pub(crate) processes: u32,
    /// An elastic group's MIN: how many processes serve at least. The others wait as spares,
    /// their applications not loaded, and join when every serving thread has been busy for a
    /// moment (`None`: every process serves).
    pub(crate) min_processes: Option<u32>,
    /// In an elastic group, a process beyond MIN with no request for this long leaves the
    /// serving ones (default 120 s).
    pub(crate) idle_timeout: Duration,
    /// Beyond this many requests waiting for the group, Apache answers 503 at once instead of
    /// letting them wait up to queue-timeout (off by default).
    pub(crate) queue_limit: Option<u32>,
    /// Requests each process serves at once (default 15, as mod_wsgi).
    pub(crate) threads: u32,
    /// The user the processes run as (default: Apache's child user); never root.
    pub(crate) user: Option<String>,
    /// The group they run as (default: the user's primary group).
    pub(crate) group: Option<String>,
    /// Working directory (default: the user's home directory).
    pub(crate) home: Option<String>,
    pub(crate) umask: Option<u32>,
    /// Shown by `ps` instead of Apache's command line.
    pub(crate) display_name: Option<String>,
    /// The process environment, exactly (plus PATH, HOME, USER and LOGNAME).
    pub(crate) env: SettingList,
    /// How long an Apache child waits to connect to the group (default 15 s).
    pub(crate) connect_timeout: Duration,
    /// How long an Apache child waits for the daemon while a request is on the connection
    /// (default 60 s; a daemon silent for longer answers 504).
    pub(crate) socket_timeout: Duration,
    pub(crate) listen_backlog: u32,
    /// A process that has served this many requests is replaced (off by default).
    pub(crate) maximum_requests: Option<u64>,
    /// A process that has served nothing for this long is replaced (off by default).
    pub(crate) inactivity_timeout: Option<Duration>,
    /// How long a process being replaced may take to finish its requests (default 15 s).
    pub(crate) graceful_timeout: Duration,
    /// How long a request may wait for its response head, and a response for its next piece
    /// (default 300 s); a URL's stream-idle-timeout replaces it there.
    pub(crate) request_timeout: Duration,
    /// A request waiting longer than this for a free daemon thread gets 503 (default 45 s).
    pub(crate) queue_timeout: Duration,
    /// How long processes may take to finish their requests when Apache stops (default 5 s).
    pub(crate) shutdown_timeout: Duration,
    /// A process whose applications have not started after this long is replaced (off).
    pub(crate) startup_timeout: Option<Duration>,
    /// Upgraded connections (WebSockets) one process relays at once; more get 503
    /// (default 1000).
    pub(crate) max_tunnels: u32,
    /// A process that has run this long is replaced (off by default).
    pub(crate) restart_interval: Option<Duration>,
    /// A file whose modification time, once changed, replaces the group's processes (off).
    pub(crate) restart_file: Option<String>,
    /// A process whose resident memory passes this many bytes is replaced (off).
    pub(crate) memory_limit: Option<u64>,
    /// A process that has used this much CPU time is replaced (off).
    pub(crate) cpu_time_limit: Option<Duration>,
    /// Stack of each request thread, in bytes (default: Rust's, 2 MiB).
    pub(crate) stack_size: Option<usize>,
    /// The processes' nice value, -20 (first) to 19 (last); set before dropping root.
    pub(crate) cpu_priority: Option<i32>,
    /// Groups the processes belong to besides their user's own.
    pub(crate) supplementary_groups: Vec<String>,
    /// `file:line` of the directive.
    pub(crate) defined_at: String,
}

impl DaemonGroup {
    /// The name `ps` shows, if the group asked for one.
    pub(crate) fn process_title(&self) -> Option<String> {
        self.display_name.as_ref().map(|d| {
            if d == "%{GROUP}" {
                format!("(rustapp:{})", self.name)
            } else {
                d.clone()
            }
        })
    }
}

/// Parses the directive's arguments; `read_env_file` reads an `env-file=` (a function so that
/// tests need no files).
pub(crate) fn parse_daemon_group(
    tables: &mut ConfigTables,
    args: &[&str],
    defined_at: String,
    read_env_file: impl Fn(&str) -> Result<String, String>,
) -> Result<DaemonGroup, String> {
    let Some((name, options)) = args.split_first() else {
        return Err(format!(
            "RustAppDaemonProcess takes a group name and options: {ALLOWED}"
        ));
    };
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    {
        return Err(format!(
            "RustAppDaemonProcess: the group name '{name}' may contain only letters, digits, '_', '.' and '-'"
        ));
    }
    let index = tables.define_group(name, &defined_at)?;
    let mut group = DaemonGroup {
        index,
        name: (*name).to_owned(),
        processes: 1,
        min_processes: None,
        idle_timeout: Duration::from_secs(120),
        queue_limit: None,
        threads: 15,
        user: None,
        group: None,
        home: None,
        umask: None,
        display_name: None,
        env: SettingList::default(),
        connect_timeout: Duration::from_secs(15),
        socket_timeout: Duration::from_secs(60),
        listen_backlog: 100,
        maximum_requests: None,
        inactivity_timeout: None,
        graceful_timeout: Duration::from_secs(15),
        request_timeout: Duration::from_secs(300),
        queue_timeout: Duration::from_secs(45),
        shutdown_timeout: Duration::from_secs(5),
        startup_timeout: None,
        max_tunnels: 1000,
        restart_interval: None,
        restart_file: None,
        memory_limit: None,
        cpu_time_limit: None,
        stack_size: None,
        cpu_priority: None,
        supplementary_groups: Vec::new(),
        defined_at,
    };
    for option in options {
        let bad = |why: String| format!("RustAppDaemonProcess {name}: option '{option}': {why}");
        let Some((key, value)) = option.split_once('=') else {
            return Err(format!(
                "RustAppDaemonProcess {name}: '{option}' is not KEY=VALUE; allowed: {ALLOWED}"
            ));
        };
        match key {
            "processes" => match value.split_once('-') {
                Some((min, max)) => {
                    let max = number(max, 2, 1000).map_err(bad)?;
                    let min =
                        number(min, 1, max - 1).map_err(|e| bad(format!("{e} (MIN below MAX)")))?;
                    (group.min_processes, group.processes) = (Some(min), max);
                }
                None => {
                    (group.min_processes, group.processes) =
                        (None, number(value, 1, 1000).map_err(bad)?)
                }
            },
            "idle-timeout" => group.idle_timeout = seconds(value).map_err(bad)?,
            "queue-limit" => group.queue_limit = Some(number(value, 0, 1_000_000).map_err(bad)?),
            "threads" => group.threads = number(value, 1, 1000).map_err(bad)?,
            "listen-backlog" => group.listen_backlog = number(value, 1, 65535).map_err(bad)?,
            "max-tunnels" => group.max_tunnels = number(value, 1, 1_000_000).map_err(bad)?,
            "maximum-requests" => {
                group.maximum_requests = Some(u64::from(number(value, 1, u32::MAX).map_err(bad)?))
            }
            "inactivity-timeout" => group.inactivity_timeout = Some(seconds(value).map_err(bad)?),
            "graceful-timeout" => group.graceful_timeout = seconds(value).map_err(bad)?,
            "request-timeout" => group.request_timeout = seconds(value).map_err(bad)?,
            "queue-timeout" => group.queue_timeout = seconds(value).map_err(bad)?,
            "shutdown-timeout" => group.shutdown_timeout = seconds(value).map_err(bad)?,
            "startup-timeout" => group.startup_timeout = Some(seconds(value).map_err(bad)?),
            "connect-timeout" => group.connect_timeout = seconds(value).map_err(bad)?,
            "restart-interval" => group.restart_interval = Some(seconds(value).map_err(bad)?),
            "restart-file" => group.restart_file = Some(absolute(value).map_err(bad)?),
            "memory-limit" => group.memory_limit = Some(byte_size(value).map_err(bad)?),
            "cpu-time-limit" => group.cpu_time_limit = Some(seconds(value).map_err(bad)?),
            "stack-size" => group.stack_size = Some(stack_size(value).map_err(bad)?),
            "cpu-priority" => group.cpu_priority = Some(nice(value).map_err(bad)?),
            "supplementary-groups" => {
                for name in value.split(',') {
                    group
                        .supplementary_groups
                        .push(account(name, "root").map_err(bad)?);
                }
            }
            "socket-timeout" => group.socket_timeout = seconds(value).map_err(bad)?,
            "user" => group.user = Some(account(value, "root").map_err(bad)?),
            "group" => group.group = Some(account(value, "").map_err(bad)?),
            "home" => group.home = Some(absolute(value).map_err(bad)?),
            "umask" => group.umask = Some(octal(value).map_err(bad)?),
            "display-name" if !value.is_empty() => group.display_name = Some(value.to_owned()),
            "env" => {
                let (k, v) = env_pair(value).map_err(bad)?;
                group.env.set(k, v);
            }
            "env-file" => {
                let text = read_env_file(value).map_err(bad)?;
                for (line_no, line) in text.lines().enumerate() {
                    let line = line.trim();
                    if line.is_empty() || line.starts_with('#') {
                        continue;
                    }
                    let (k, v) =
                        env_pair(line).map_err(|e| bad(format!("line {}: {e}", line_no + 1)))?;
                    group.env.set(k, v);
                }
            }
            _ => {
                return Err(format!(
                    "RustAppDaemonProcess {name}: unknown option '{key}'; allowed: {ALLOWED}"
                ));
            }
        }
    }
    Ok(group)
}

fn number(value: &str, min: u32, max: u32) -> Result<u32, String> {
    match value.parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "'{value}' is not a whole number from {min} to {max}"
        )),
    }
}

pub(crate) fn seconds(value: &str) -> Result<Duration, String> {
    number(value, 1, 86_400).map(|s| Duration::from_secs(u64::from(s)))
}

/// A request thread's stack: from 64 KiB to 1 GiB.
fn stack_size(value: &str) -> Result<usize, String> {
    size_in(value, 64 << 10, 1 << 30, "64K to 1024M")
        .map(|bytes| usize::try_from(bytes).unwrap_or(usize::MAX))
}

fn nice(value: &str) -> Result<i32, String> {
    match value.parse::<i32>() {
        Ok(n) if (-20..=19).contains(&n) => Ok(n),
        _ => Err(format!(
            "'{value}' is not a nice value from -20 (first) to 19 (last)"
        )),
    }
}

/// A size in bytes, with an optional K, M or G (powers of 1024), from 1 MiB to 1 TiB.
fn byte_size(value: &str) -> Result<u64, String> {
    size_in(value, 1 << 20, 1 << 40, "1M to 1024G")
}

fn size_in(value: &str, min: u64, max: u64, range: &str) -> Result<u64, String> {
    let (digits, unit) = match value.char_indices().last() {
        Some((at, 'K' | 'k')) => (&value[..at], 1 << 10),
        Some((at, 'M' | 'm')) => (&value[..at], 1 << 20),
        Some((at, 'G' | 'g')) => (&value[..at], 1 << 30),
        _ => (value, 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .filter(|bytes| (min..=max).contains(bytes))
        .ok_or_else(|| {
            format!("'{value}' is not a size from {range} (bytes, or a number with K, M or G)")
        })
}

fn account(value: &str, forbidden: &str) -> Result<String, String> {
    if value.is_empty() {
        return Err("a user or group name is required".into());
    }
    if value == forbidden || value == "#0" {
        return Err("daemon processes never run as root".into());
    }
    Ok(value.to_owned())
}

fn absolute(value: &str) -> Result<String, String> {
    if value.starts_with('/') {
        Ok(value.to_owned())
    } else {
        Err(format!("'{value}' is not an absolute path"))
    }
}

fn octal(value: &str) -> Result<u32, String> {
    u32::from_str_radix(value, 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| format!("'{value}' is not an octal mode such as 0027"))
}

fn env_pair(value: &str) -> Result<(&str, &str), String> {
    match value.split_once('=') {
        Some((k, v))
            if !k.is_empty()
                && !k.contains(|c: char| c.is_whitespace() || c == '\0')
                && !v.contains('\0') =>
        {
            Ok((k, v))
        }
        _ => Err(format!("'{value}' is not KEY=VALUE")),
    }
}

/// A `RustAppProcessGroup` / `process-group=` value: a group name.
pub(crate) fn parse_group_reference<'a>(name: &'a str, directive: &str) -> Result<&'a str, String> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    {
        return Err(format!(
            "{directive}: '{name}' is not a daemon process group name"
        ));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<DaemonGroup, String> {
        let mut tables = ConfigTables::default();
        parse_daemon_group(&mut tables, args, "t.conf:1".into(), |path| match path {
            "/etc/shop.env" => {
                Ok("# settings\nDJANGO_SETTINGS_MODULE=shop.settings\n\nSECRET=a=b\n".into())
            }
            other => Err(format!("cannot read {other}")),
        })
    }

    #[test]
    fn defaults_are_production_sane() {
        let g = parse(&["shop"]).unwrap();
        assert_eq!((g.processes, g.threads), (1, 15));
        assert_eq!(g.socket_timeout, Duration::from_secs(60));
        assert_eq!(g.connect_timeout, Duration::from_secs(15));
        assert_eq!(
            (g.request_timeout, g.queue_timeout),
            (Duration::from_secs(300), Duration::from_secs(45))
        );
    }

    #[test]
    fn options_are_parsed_into_values() {
        let g = parse(&[
            "shop",
            "processes=2",
            "threads=16",
            "user=shop",
            "group=www",
            "home=/srv/shop",
            "umask=0027",
            "display-name=%{GROUP}",
            "env=APP_SETTINGS=/etc/shop/settings.toml",
            "env-file=/etc/shop.env",
            "socket-timeout=30",
            "restart-interval=3600",
            "restart-file=/srv/shop/restart.txt",
            "memory-limit=512M",
            "cpu-time-limit=600",
            "stack-size=8M",
            "cpu-priority=5",
            "supplementary-groups=ssl-cert,shop-data",
        ])
        .unwrap();
        assert_eq!((g.processes, g.threads, g.umask), (2, 16, Some(0o027)));
        assert_eq!(g.user.as_deref(), Some("shop"));
        assert_eq!(g.process_title().as_deref(), Some("(rustapp:shop)"));
        assert_eq!(g.env.get("APP_SETTINGS"), Some("/etc/shop/settings.toml"));
        assert_eq!(g.env.get("DJANGO_SETTINGS_MODULE"), Some("shop.settings"));
        assert_eq!(g.env.get("SECRET"), Some("a=b"));
        assert_eq!(g.socket_timeout, Duration::from_secs(30));
        assert_eq!(g.restart_interval, Some(Duration::from_secs(3600)));
        assert_eq!(g.restart_file.as_deref(), Some("/srv/shop/restart.txt"));
        assert_eq!(g.memory_limit, Some(512 << 20));
        assert_eq!(g.cpu_time_limit, Some(Duration::from_secs(600)));
        assert_eq!(g.stack_size, Some(8 << 20));
        assert_eq!(g.cpu_priority, Some(5));
        assert_eq!(g.supplementary_groups, ["ssl-cert", "shop-data"]);
        assert_eq!(
            parse(&["shop", "memory-limit=2g"]).unwrap().memory_limit,
            Some(2 << 30)
        );
        let elastic =
            parse(&["shop", "processes=1-4", "idle-timeout=30", "queue-limit=50"]).unwrap();
        assert_eq!((elastic.min_processes, elastic.processes), (Some(1), 4));
        assert_eq!(elastic.idle_timeout, Duration::from_secs(30));
        assert_eq!(elastic.queue_limit, Some(50));
        assert_eq!(
            parse(&["shop", "memory-limit=1048576"])
                .unwrap()
                .memory_limit,
            Some(1 << 20)
        );
    }

    #[test]
    fn bad_values_name_the_option_the_value_and_what_is_allowed() {
        let cases = [
            (
                vec!["shop", "processes=4-2"],
                "option 'processes=4-2': '4' is not a whole number from 1 to 1 (MIN below MAX)",
            ),
            (
                vec!["shop", "processes=0"],
                "option 'processes=0': '0' is not a whole number from 1 to 1000",
            ),
            (vec!["shop", "user=root"], "never run as root"),
            (vec!["shop", "home=relative"], "not an absolute path"),
            (vec!["shop", "umask=999"], "not an octal mode"),
            (
                vec!["shop", "colour=blue"],
                "unknown option 'colour'; allowed: processes=N",
            ),
            (vec!["shop", "env-file=/missing"], "cannot read /missing"),
            (
                vec!["shop", "startup-timeout=0"],
                "'0' is not a whole number from 1",
            ),
            (
                vec!["shop", "memory-limit=lots"],
                "option 'memory-limit=lots': 'lots' is not a size from 1M to 1024G",
            ),
            (vec!["shop", "memory-limit=512K"], "is not a size from 1M"),
            (
                vec!["shop", "restart-file=restart.txt"],
                "not an absolute path",
            ),
            (vec!["sh op"], "may contain only letters"),
            (vec![], "takes a group name"),
        ];
        for (args, expected) in cases {
            let err = parse(&args).unwrap_err();
            assert!(err.contains(expected), "{args:?}: {err}");
        }
    }
}
