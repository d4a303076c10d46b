//! `rustapp-express`: a private Apache serving one mod_rustapp application, in one command,
//! the way `mod_wsgi-express` serves a WSGI application.
//!
//! ```text
//! rustapp-express start-server target/release/libmysite.so    # foreground, Ctrl-C stops
//! rustapp-express setup-server target/release/libmysite.so --server-root /srv/mysite/apache
//! rustapp-express module-config                                # LoadModule line for /etc/apache2
//! rustapp-express restart-app --server-root /srv/mysite/apache  # new daemons, same Apache
//! rustapp-express status --server-root /srv/mysite/apache       # what its processes do
//! ```

mod config;
mod options;
mod status;
mod system;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use config::{ServerPlan, render};
use options::{OPTIONS_HELP, SiteOptions};

const USAGE: &str = "\
usage:
  rustapp-express start-server LIB.so [options]   serve LIB.so in the foreground (Ctrl-C stops)
  rustapp-express setup-server LIB.so --server-root DIR [options]
                                                  write the configuration and an apachectl script
  rustapp-express module-config                   print the LoadModule line for the system Apache
  rustapp-express restart-app --server-root DIR | --port N [--host H]
                                                  replace the daemon processes of a server
                                                  started or set up here, without restarting
                                                  Apache (no request is lost)
  rustapp-express status --server-root DIR | --port N [--host H]
                                                  what a server started or set up here is
                                                  doing: its daemon processes and requests";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.first().map(String::as_str) {
        Some("start-server") => start_server(&args[1..]),
        Some("setup-server") => setup_server(&args[1..]),
        Some("module-config") => module_config(&args[1..]),
        Some("restart-app") => restart_app(&args[1..]),
        Some("status") => show_status(&args[1..]),
        Some("help" | "--help" | "-h") => {
            println!("{USAGE}\n\n{OPTIONS_HELP}");
            return ExitCode::SUCCESS;
        }
        Some(other) => Err(format!(
            "unknown command '{other}'; use start-server, setup-server, module-config, restart-app or status"
        )),
        None => Err(format!("no command given\n{USAGE}")),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(problem) => {
            eprintln!("rustapp-express: {problem}");
            ExitCode::from(2)
        }
    }
}

/// Checks everything that can be checked before Apache starts, and writes the configuration.
fn prepare(args: &[String], logs_to_terminal: bool) -> Result<(SiteOptions, PathBuf), String> {
    let mut site = options::parse(args)?;
    site.library = system::check_library(&site.library)?;
    for (url, dir) in &mut site.url_aliases {
        *dir = dir
            .canonicalize()
            .ok()
            .filter(|d| d.is_dir())
            .ok_or_else(|| format!("--url-alias {url} {}: not a directory", dir.display()))?;
    }
    if logs_to_terminal {
        // start-server: Apache would say so too, but after the banner and in its own words.
        std::net::TcpListener::bind((site.host.as_str(), site.port)).map_err(|e| {
            format!(
                "cannot listen on {}:{} ({e}); choose another --port or --host",
                site.host, site.port
            )
        })?;
    }
    let module = system::find_module(site.module.as_deref())?;
    let run_as = system::run_as(site.user.as_deref(), site.group.as_deref())?;
    let root = site
        .server_root
        .clone()
        .unwrap_or_else(|| default_root(&site.host, site.port));
    if root.to_string_lossy().contains(char::is_whitespace) {
        return Err(format!(
            "--server-root {}: give a directory without spaces (Apache's Mutex directive cannot take them)",
            root.display()
        ));
    }
    std::fs::create_dir_all(&root)
        .and_then(|()| std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)))
        .map_err(|e| format!("--server-root {}: {e}", root.display()))?;
    let root = root.canonicalize().map_err(|e| e.to_string())?;
    if !site.embedded {
        site.working_directory = Some(working_directory(&site, &run_as, &root)?);
    }
    let plan = ServerPlan {
        root: root.clone(),
        module,
        modules_dir: PathBuf::from(system::MODULES_DIR),
        logs_to_terminal,
        run_as,
    };
    let conf = root.join("httpd.conf");
    std::fs::write(&conf, render(&site, &plan))
        .map_err(|e| format!("cannot write {}: {e}", conf.display()))?;
    Ok((site, conf))
}

/// Where `start-server` keeps its configuration when no `--server-root` is given.
fn default_root(host: &str, port: u16) -> PathBuf {
    PathBuf::from(format!(
        "/tmp/rustapp-express-{host}:{port}-{}",
        system::current_uid()
    ))
}

/// A server started or set up here, as a command names it: `--server-root DIR`, or
/// `--port N [--host H]` (for a server root in the default place).
struct ServerRef {
    root: PathBuf,
    host: String,
    port: Option<u16>,
}

impl ServerRef {
    fn parse(command: &str, args: &[String]) -> Result<ServerRef, String> {
        let (mut root, mut host, mut port) = (None, "127.0.0.1".to_owned(), None);
        let mut rest = args.iter();
        while let Some(flag) = rest.next() {
            let mut value = || {
                rest.next()
                    .cloned()
                    .ok_or_else(|| format!("{flag} needs a value"))
            };
            match flag.as_str() {
                "--server-root" => root = Some(PathBuf::from(value()?)),
                "--host" => host = value()?,
                "--port" => {
                    let given = value()?;
                    port = Some(
                        given
                            .parse::<u16>()
                            .map_err(|_| format!("--port {given}: not a port number"))?,
                    );
                }
                other => {
                    return Err(format!(
                        "{command} takes --server-root DIR, or --port N [--host H]; not '{other}'"
                    ));
                }
            }
        }
        let root = match (root, port) {
            (Some(root), _) => root,
            (None, Some(port)) => default_root(&host, port),
            (None, None) => {
                return Err(format!(
                    "{command} needs --server-root DIR, or the --port the server listens on"
                ));
            }
        };
        Ok(ServerRef { root, host, port })
    }

    /// Where the server listens: as given, else as its configuration says.
    fn address(&self) -> Result<(String, u16), String> {
        if let Some(port) = self.port {
            return Ok((self.host.clone(), port));
        }
        let conf = self.root.join("httpd.conf");
        let text = std::fs::read_to_string(&conf)
            .map_err(|e| format!("cannot read {}: {e}", conf.display()))?;
        text.lines()
            .find_map(|line| {
                let (host, port) = line.strip_prefix("Listen ")?.rsplit_once(':')?;
                Some((host.to_owned(), port.trim().parse().ok()?))
            })
            .ok_or_else(|| format!("{} has no Listen line", conf.display()))
    }
}

/// Prints what a server's daemon processes and applications are doing.
fn show_status(args: &[String]) -> Result<(), String> {
    let server = ServerRef::parse("status", args)?;
    let (host, port) = server.address()?;
    status::show(&host, port)
}

/// Touches the daemon group's restart-file in the server root: its processes are replaced one
/// generation at a time as they finish their requests, while Apache goes on.
fn restart_app(args: &[String]) -> Result<(), String> {
    let root = ServerRef::parse("restart-app", args)?.root;
    let conf = root.join("httpd.conf");
    let ours = std::fs::read_to_string(&conf)
        .map(|text| text.contains(config::RESTART_FILE))
        .unwrap_or(false);
    if !ours {
        return Err(format!(
            "{} is not the configuration of a daemon-mode server set up by rustapp-express",
            conf.display()
        ));
    }
    let file = root.join(config::RESTART_FILE);
    std::fs::write(&file, format!("{:?}\n", std::time::SystemTime::now()))
        .map_err(|e| format!("cannot touch {}: {e}", file.display()))?;
    println!(
        "rustapp-express: touched {}; the daemon processes are replaced within a second or two",
        file.display()
    );
    Ok(())
}

/// The daemons' working directory: `--working-directory`, else where the command runs, as in
/// development; when started as root, the server root (the current directory is often
/// root's own, which the application's user cannot enter).
fn working_directory(
    site: &SiteOptions,
    run_as: &Option<(String, String)>,
    root: &Path,
) -> Result<PathBuf, String> {
    let chosen = match (&site.working_directory, run_as) {
        (Some(dir), _) => dir.clone(),
        (None, Some(_)) => return Ok(root.to_path_buf()),
        (None, None) => {
            std::env::current_dir().map_err(|e| format!("the current directory: {e}"))?
        }
    };
    chosen
        .canonicalize()
        .ok()
        .filter(|d| d.is_dir())
        .ok_or_else(|| format!("--working-directory {}: not a directory", chosen.display()))
}

fn start_server(args: &[String]) -> Result<(), String> {
    let apache = system::apache_binary()?;
    let (site, conf) = prepare(args, true)?;
    print_banner(&site, &conf);
    let mut command = Command::new(apache);
    command.arg("-f").arg(&conf).arg("-DFOREGROUND");
    if site.embedded {
        // Embedded, the application shares Apache's processes and so their environment.
        command.envs(site.env.iter().map(|(k, v)| (k, v)));
    }
    // Apache takes this process's place: Ctrl-C and SIGTERM reach it directly, and it stops
    // its children and daemon processes before it exits.
    let error = command.exec();
    Err(format!("cannot run Apache: {error}"))
}

fn print_banner(site: &SiteOptions, conf: &Path) {
    let shape = format!(
        "{} process{} x {} thread{}",
        site.processes,
        if site.processes == 1 { "" } else { "es" },
        site.threads,
        if site.threads == 1 { "" } else { "s" }
    );
    let mode = if site.embedded {
        format!("embedded in Apache's processes ({shape})")
    } else {
        format!("daemon group '{}' ({shape})", config::GROUP_NAME)
    };
    let access = if site.access_log {
        "access log on standard output"
    } else {
        "access log off (--access-log)"
    };
    println!(
        "rustapp-express: serving {}\n  URL:    http://{}:{}{}\n  mode:   {mode}\n  logs:   error log on standard error, {access}\n  config: {}\n  Ctrl-C stops the server.",
        site.library.display(),
        site.host,
        site.port,
        site.mount_point,
        conf.display()
    );
}

fn setup_server(args: &[String]) -> Result<(), String> {
    if !args.iter().any(|a| a == "--server-root") {
        return Err(
            "setup-server needs --server-root DIR: where the configuration and apachectl go".into(),
        );
    }
    let apache = system::apache_binary()?;
    let (site, conf) = prepare(args, false)?;
    let root = conf
        .parent()
        .expect("the configuration is in the server root");
    let script = root.join("apachectl");
    std::fs::write(&script, apachectl_script(&apache, &conf, &site))
        .and_then(|()| std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)))
        .map_err(|e| format!("cannot write {}: {e}", script.display()))?;
    println!(
        "rustapp-express: wrote {} and {}\n  start it with `{} start` (stop, restart, graceful, configtest, restart-app); logs go to {}",
        conf.display(),
        script.display(),
        script.display(),
        root.display()
    );
    Ok(())
}

/// An `apachectl` for this server, for systemd units and init scripts.
fn apachectl_script(apache: &Path, conf: &Path, site: &SiteOptions) -> String {
    let exports: String = if site.embedded {
        site.env
            .iter()
            .map(|(k, v)| format!("export {k}='{}'\n", v.replace('\'', "'\\''")))
            .collect()
    } else {
        String::new()
    };
    format!(
        "#!/bin/sh\n\
         # Generated by rustapp-express setup-server: controls the Apache serving {lib}.\n\
         {exports}\
         HTTPD='{apache}'\nCONF='{conf}'\n\
         case \"$1\" in\n\
         \x20   start|stop|restart|graceful|graceful-stop) exec \"$HTTPD\" -f \"$CONF\" -k \"$1\" ;;\n\
         \x20   foreground) exec \"$HTTPD\" -f \"$CONF\" -DFOREGROUND ;;\n\
         \x20   configtest) exec \"$HTTPD\" -f \"$CONF\" -t ;;\n\
         \x20   restart-app) {restart_app} ;;\n\
         \x20   *) echo \"usage: $0 start|stop|restart|graceful|graceful-stop|foreground|configtest|restart-app\" >&2; exit 2 ;;\n\
         esac\n",
        lib = site.library.display(),
        apache = apache.display(),
        conf = conf.display(),
        restart_app = restart_app_action(conf, site),
    )
}

/// What `apachectl restart-app` does: in daemon mode, touch the group's restart-file (new
/// daemons, same Apache); embedded, the application lives in Apache's children, so a graceful
/// restart.
fn restart_app_action(conf: &Path, site: &SiteOptions) -> String {
    if site.embedded {
        "exec \"$HTTPD\" -f \"$CONF\" -k graceful".to_owned()
    } else {
        let file = conf.with_file_name(config::RESTART_FILE);
        format!("date > '{}'", file.display())
    }
}

fn module_config(args: &[String]) -> Result<(), String> {
    let module = match args {
        [] => system::find_module(None)?,
        [flag, path] if flag == "--module" => system::find_module(Some(Path::new(path)))?,
        _ => return Err("module-config takes no options but --module PATH".into()),
    };
    println!("LoadModule rustapp_module {}", module.display());
    Ok(())
}
