//! The command line of `start-server` and `setup-server`, checked before anything starts:
//! every mistake is one line saying what is wrong and what is allowed.

use std::path::PathBuf;

/// Everything a generated server is made from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteOptions {
    pub library: PathBuf,
    pub host: String,
    pub port: u16,
    pub server_root: Option<PathBuf>,
    /// Run the application inside Apache's processes instead of a daemon group.
    pub embedded: bool,
    pub processes: u32,
    pub threads: u32,
    pub settings: Vec<(String, String)>,
    pub env: Vec<(String, String)>,
    pub mount_point: String,
    /// `--url-alias URL DIR`: static files Apache serves itself.
    pub url_aliases: Vec<(String, PathBuf)>,
    /// Protect the site with the application's users (`AuthBasicProvider rustapp`).
    pub auth_user: bool,
    pub auth_group: Option<String>,
    pub auth_realm: Option<String>,
    pub access_log: bool,
    pub log_level: String,
    pub user: Option<String>,
    pub group: Option<String>,
    pub module: Option<PathBuf>,
    pub request_timeout: u32,
    /// Daemon mode: the application's working directory (default: where the command runs).
    pub working_directory: Option<PathBuf>,
}

impl SiteOptions {
    fn new(library: PathBuf) -> SiteOptions {
        SiteOptions {
            library,
            host: "127.0.0.1".into(),
            port: 8000,
            server_root: None,
            embedded: false,
            processes: 1,
            threads: 5,
            settings: Vec::new(),
            env: Vec::new(),
            mount_point: "/".into(),
            url_aliases: Vec::new(),
            auth_user: false,
            auth_group: None,
            auth_realm: None,
            access_log: false,
            log_level: "info".into(),
            user: None,
            group: None,
            module: None,
            request_timeout: 60,
            working_directory: None,
        }
    }
}

pub const OPTIONS_HELP: &str = "\
options:
  --port N                  port to listen on [8000]
  --host ADDRESS            address to listen on [127.0.0.1]
  --server-root DIR         where the generated configuration and sockets go
                            [/tmp/rustapp-express-HOST:PORT-UID]
  --embedded                run the application inside Apache's processes [daemon mode]
  --processes N             processes serving the application [1]
  --threads N               requests each process serves at once [5]
  --setting NAME=VALUE      a setting for the application (repeatable)
  --env NAME=VALUE          an environment variable for the application (repeatable)
  --mount-point URL         where the application is mounted [/]
  --url-alias URL DIR       serve the files in DIR at URL (repeatable)
  --auth-user               require a user of the application's user store
  --auth-group GROUP        ... in this group (implies --auth-user)
  --auth-realm TEXT         the realm browsers show [the library's name]
  --access-log              log each request
  --log-level LEVEL         emerg .. debug, trace1 .. trace8 [info]
  --request-timeout SECONDS daemon mode: answer 504 past this [60]
  --user NAME, --group NAME when started as root: the user Apache and the application run as
                            [www-data]
  --working-directory DIR   daemon mode: the application's working directory [the current
                            one; the server root when started as root]
  --module PATH             mod_rustapp.so to load [next to this program, else Apache's modules]";

const LOG_LEVELS: [&str; 16] = [
    "emerg", "alert", "crit", "error", "warn", "notice", "info", "debug", "trace1", "trace2",
    "trace3", "trace4", "trace5", "trace6", "trace7", "trace8",
];

/// Parses `LIB.so [options]`.
pub fn parse(args: &[String]) -> Result<SiteOptions, String> {
    let mut args = args.iter().map(String::as_str);
    let library = match args.next() {
        Some(first) if !first.starts_with("--") => PathBuf::from(first),
        _ => {
            return Err("give the application library first: start-server LIB.so [options]".into());
        }
    };
    let mut site = SiteOptions::new(library);
    while let Some(option) = args.next() {
        let mut value = |what: &str| {
            args.next()
                .filter(|v| !v.starts_with("--"))
                .ok_or_else(|| format!("{option} needs {what}"))
        };
        match option {
            "--port" => site.port = number(option, value("a port number")?, 1, 65535)? as u16,
            "--host" => site.host = value("an address")?.to_owned(),
            "--server-root" => site.server_root = Some(value("a directory")?.into()),
            "--embedded" => site.embedded = true,
            "--processes" => site.processes = number(option, value("a count")?, 1, 256)?,
            "--threads" => site.threads = number(option, value("a count")?, 1, 256)?,
            "--setting" => site.settings.push(pair(option, value("NAME=VALUE")?)?),
            "--env" => site.env.push(pair(option, value("NAME=VALUE")?)?),
            "--mount-point" => site.mount_point = url_path(option, value("a URL path")?)?,
            "--url-alias" => {
                let url = url_path(option, value("a URL path and a directory")?)?;
                let dir = value("a directory after the URL path")?;
                site.url_aliases.push((url, dir.into()));
            }
            "--auth-user" => site.auth_user = true,
            "--auth-group" => {
                site.auth_user = true;
                site.auth_group = Some(name(option, value("a group name")?)?);
            }
            "--auth-realm" => site.auth_realm = Some(value("a realm")?.replace('"', "'")),
            "--access-log" => site.access_log = true,
            "--log-level" => {
                let level = value("a level")?;
                if !LOG_LEVELS.contains(&level) {
                    return Err(format!(
                        "--log-level {level} is not a level; use one of {}",
                        LOG_LEVELS.join(", ")
                    ));
                }
                site.log_level = level.to_owned();
            }
            "--request-timeout" => {
                site.request_timeout = number(option, value("seconds")?, 1, 86400)?
            }
            "--user" => site.user = Some(name(option, value("a user name")?)?),
            "--group" => site.group = Some(name(option, value("a group name")?)?),
            "--module" => site.module = Some(value("the path of mod_rustapp.so")?.into()),
            "--working-directory" => {
                site.working_directory = Some(value("a directory")?.into());
            }
            other => {
                return Err(format!(
                    "unknown option '{other}'; `rustapp-express help` lists the options"
                ));
            }
        }
    }
    Ok(site)
}

fn number(option: &str, text: &str, min: u32, max: u32) -> Result<u32, String> {
    text.parse::<u32>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| format!("{option} {text}: give a whole number from {min} to {max}"))
}

fn pair(option: &str, text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value))
            if !name.is_empty() && !name.contains(char::is_whitespace) && !text.contains('\n') =>
        {
            Ok((name.to_owned(), value.to_owned()))
        }
        _ => Err(format!(
            "{option} {text}: give NAME=VALUE, with a name without spaces"
        )),
    }
}

fn url_path(option: &str, text: &str) -> Result<String, String> {
    let plain = text.starts_with('/')
        && !text.contains("//")
        && !text.split('/').any(|s| s == "." || s == "..")
        && !text.contains(|c: char| c.is_whitespace() || c == '"');
    if plain {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "{option} {text}: give a URL path starting with '/', without spaces, quotes, '//', '.' or '..'"
        ))
    }
}

fn name(option: &str, text: &str) -> Result<String, String> {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_alphanumeric() || "._-".contains(c));
    if plain {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "{option} {text}: give a name of letters, digits, '.', '_' or '-'"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn defaults_are_a_daemon_on_loopback_port_8000() {
        let site = parse(&args("lib.so")).unwrap();
        assert_eq!((site.host.as_str(), site.port), ("127.0.0.1", 8000));
        assert!(!site.embedded);
        assert_eq!((site.processes, site.threads), (1, 5));
    }

    #[test]
    fn options_are_read() {
        let site = parse(&args(
            "lib.so --port 9001 --embedded --processes 2 --threads 8 --setting A=b=c \
             --env X=1 --mount-point /app --url-alias /static /srv/s --auth-group staff \
             --access-log --log-level debug",
        ))
        .unwrap();
        assert_eq!(site.port, 9001);
        assert!(site.embedded && site.auth_user && site.access_log);
        assert_eq!(site.settings, [("A".into(), "b=c".into())]);
        assert_eq!(site.url_aliases, [("/static".into(), "/srv/s".into())]);
        assert_eq!(site.auth_group.as_deref(), Some("staff"));
        assert_eq!(site.log_level, "debug");
    }

    #[test]
    fn mistakes_say_what_is_allowed() {
        for (line, expected) in [
            ("", "give the application library first"),
            ("lib.so --port 0", "from 1 to 65535"),
            ("lib.so --port", "--port needs a port number"),
            ("lib.so --threads many", "whole number"),
            ("lib.so --setting novalue", "NAME=VALUE"),
            ("lib.so --mount-point app", "starting with '/'"),
            ("lib.so --log-level loud", "one of emerg"),
            ("lib.so --frobnicate", "unknown option '--frobnicate'"),
        ] {
            let err = parse(&args(line)).unwrap_err();
            assert!(err.contains(expected), "{line}: {err}");
        }
    }
}
