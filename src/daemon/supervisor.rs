//! In Apache's parent: sets up each daemon group's socket at every configuration generation,
//! forks its processes, and replaces any that die (Apache's maintenance loop reports deaths).

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::Arc;

use rustapp_daemon_protocol::TOKEN_LEN;

use super::process;
use super::runtime::{DaemonApp, DaemonRuntime, GroupRuntime};
use crate::config::ServerConfig;
use crate::ffi::{self, Exit, Pool, Server};

/// `post_config`: starts every group's daemons, when Apache is really about to serve.
pub(crate) fn start(pconf: Pool<'static>, main: Server<'static>) -> Result<(), String> {
    if !ffi::is_serving_start() {
        return Ok(());
    }
    let Some(main_config) = main.module_config::<ServerConfig>() else {
        return Ok(());
    };
    let servers: Vec<_> = main.and_following().collect();
    let groups: Vec<_> = servers
        .iter()
        .filter_map(|s| s.module_config::<ServerConfig>())
        .flat_map(|c| c.daemon_groups.iter().cloned())
        .collect();
    if groups.is_empty() {
        return Ok(());
    }
    let mut apps: Vec<DaemonApp> = Vec::new();
    for server in &servers {
        let Some(config) = server.module_config::<ServerConfig>() else {
            continue;
        };
        for alias in &config.aliases {
            if !apps.iter().any(|a| Arc::ptr_eq(&a.alias, alias)) {
                apps.push(DaemonApp {
                    alias: alias.clone(),
                    server: *server,
                    settings: config.settings.overridden_by(&alias.settings),
                });
            }
        }
    }

    let prefix = main_config
        .socket_prefix
        .clone()
        .unwrap_or_else(|| ffi::runtime_path(pconf, ""));
    let (apache_uid, _) = ffi::apache_child_user();
    let generation = ffi::config_generation();
    let mut runtimes = Vec::new();
    for group in groups {
        let socket = PathBuf::from(format!(
            "{}/rustapp.{}.{generation}.{}.sock",
            prefix.trim_end_matches('/'),
            std::process::id(),
            group.name
        ));
        let listener = listen(&socket, group.listen_backlog, apache_uid).map_err(|e| {
            format!(
                "daemon group '{}': cannot listen on {}: {e}",
                group.name,
                socket.display()
            )
        })?;
        // The next generation gets new sockets; this one's goes when Apache restarts or stops.
        let stale = socket.clone();
        pconf.on_cleanup(move || {
            let _ = std::fs::remove_file(&stale);
        });
        runtimes.push(GroupRuntime::new(group, socket, random_token()?, listener));
    }
    let runtime = Arc::new(DaemonRuntime {
        groups: runtimes,
        apps,
    });
    if main_config.daemons.set(runtime.clone()).is_err() {
        return Ok(()); // already started for this generation
    }
    for (index, group) in runtime.groups.iter().enumerate() {
        for _ in 0..group.config.processes {
            let pid = spawn(&runtime, index, main)?;
            log::info!(
                "daemon group '{}' started process {pid}, listening on {}",
                group.config.name,
                group.socket.display()
            );
            let runtime = runtime.clone();
            ffi::watch_process(pconf, pid, move |pid, exit| {
                replace(&runtime, index, main, pid, exit)
            });
        }
    }
    Ok(())
}

/// A daemon died: say how, and start another unless Apache is stopping.
fn replace(
    runtime: &Arc<DaemonRuntime>,
    index: usize,
    main: Server<'static>,
    pid: i32,
    exit: Exit,
) -> Option<i32> {
    let name = &runtime.groups[index].config.name;
    let planned = matches!(exit, Exit::Code(process::RETIRED));
    let how = match exit {
        Exit::Code(code) => format!("exited with status {code}"),
        Exit::Signal(signal) => format!("was killed by signal {signal}"),
        Exit::Lost => "was lost".to_owned(),
    };
    if ffi::is_stopping() {
        log::info!("daemon group '{name}' process {pid} {how} while Apache stops");
        return None;
    }
    match spawn(runtime, index, main) {
        Ok(new_pid) if planned => {
            log::info!(
                "daemon group '{name}' process {pid} retired; started process {new_pid} in its place"
            );
            Some(new_pid)
        }
        Ok(new_pid) => {
            log::error!(
                "daemon group '{name}' process {pid} {how}; started process {new_pid} in its place"
            );
            Some(new_pid)
        }
        Err(e) => {
            log::error!(
                "daemon group '{name}' process {pid} {how}, and no replacement could be started: {e}"
            );
            None
        }
    }
}

fn spawn(runtime: &DaemonRuntime, index: usize, main: Server<'static>) -> Result<i32, String> {
    // SAFETY: Apache's parent is single-threaded; the child only runs the daemon and exits.
    match unsafe { libc::fork() } {
        -1 => Err(format!("fork failed: {}", std::io::Error::last_os_error())),
        0 => process::run(runtime, index, main),
        pid => Ok(pid),
    }
}

/// Binds the group's socket so that only Apache's child user (and root) can connect.
fn listen(path: &PathBuf, backlog: u32, apache_uid: u32) -> std::io::Result<UnixListener> {
    let _ = std::fs::remove_file(path); // a stale socket from a crashed generation
    // SAFETY: umask only changes this process's file creation mask; restored below.
    let previous = unsafe { libc::umask(0o077) };
    let bound = UnixListener::bind(path);
    // SAFETY: as above.
    unsafe { libc::umask(previous) };
    let listener = bound?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } == 0 {
        std::os::unix::fs::chown(path, Some(apache_uid), None)?;
    }
    // std's default backlog is 128; honour the group's.
    // SAFETY: listen() on our own listening socket.
    unsafe {
        libc::listen(
            std::os::fd::AsRawFd::as_raw_fd(&listener),
            backlog as libc::c_int,
        )
    };
    Ok(listener)
}

fn random_token() -> Result<[u8; TOKEN_LEN], String> {
    let mut token = [0u8; TOKEN_LEN];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut token))
        .map_err(|e| format!("cannot read /dev/urandom for the daemons' token: {e}"))?;
    Ok(token)
}
