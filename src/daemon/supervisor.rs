//! In Apache's parent: keeps each daemon group's socket, forks the group's processes at every
//! configuration generation, replaces any that die (Apache's maintenance loop reports deaths),
//! and lets a generation's daemons retire when the next one starts.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rustapp_daemon_protocol::TOKEN_LEN;

use super::os::{self, Forked};
use super::process;
use super::rolling::{self, RollLock};
use super::runtime::{DaemonRuntime, GroupRuntime};
use crate::config::{self, AppTable, DaemonGroup, GroupIndex, ServerConfig};
use crate::ffi::{self, Exit, Pool, Server};
use crate::figures::{Board, EndReason, GroupFigures};

/// A group's socket and token, kept by Apache's parent across configuration generations: during
/// a graceful restart, children of the old generation and daemons of the new one meet on it.
struct Endpoint {
    group: String,
    socket: PathBuf,
    listener: UnixListener,
    token: [u8; TOKEN_LEN],
}

/// Lives in Apache's parent from one generation to the next (the module stays loaded).
static ENDPOINTS: Mutex<Vec<Endpoint>> = Mutex::new(Vec::new());

/// `post_config`: starts every group's daemons, when Apache is really about to serve. `apps`
/// is every application of the configuration; `group_count` how many group indices it has.
pub(crate) fn start(
    pconf: Pool<'static>,
    main: Server<'static>,
    apps: Arc<AppTable>,
    group_count: usize,
    board: &Board,
) -> Result<Option<Arc<DaemonRuntime>>, String> {
    if !ffi::is_serving_start() {
        return Ok(None);
    }
    let Some(main_config) = main.module_config::<ServerConfig>() else {
        return Ok(None);
    };
    let groups = config::daemon_groups(main);
    let prefix = main_config
        .socket_prefix
        .clone()
        .unwrap_or_else(|| ffi::runtime_path(pconf, ""));
    // Also without groups: the sockets of groups no longer configured go.
    let runtimes = group_runtimes(&groups, &prefix, board)?;
    if runtimes.is_empty() {
        return Ok(None);
    }
    let mut by_index: Vec<Option<GroupRuntime>> = (0..group_count).map(|_| None).collect();
    for runtime in runtimes {
        let index = runtime.config.index.get();
        by_index[index] = Some(runtime);
    }
    let runtime = Arc::new(DaemonRuntime {
        groups: by_index,
        apps,
    });

    let live: Arc<Mutex<Vec<i32>>> = Arc::default();
    // Set when this configuration generation ends: its daemons are then reaped, never replaced
    // (replacing them would use the configuration Apache has just freed).
    let ended = Arc::new(AtomicBool::new(false));
    for (index, group) in runtime.each_group() {
        if group.config.queue_limit.is_some() && group.figures.is_none() {
            log::warn!(
                "daemon group '{}': queue-limit counts the requests waiting in the figures, which RustAppFigures Off turns off; it is not enforced",
                group.config.name
            );
        }
        if group.config.min_processes.is_some() && group.figures.is_none() {
            log::warn!(
                "daemon group '{}': an elastic group's processes decide from the figures, which RustAppFigures Off turns off; all {} of its processes serve",
                group.config.name,
                group.config.processes
            );
        }
        for _ in 0..group.config.processes {
            // A group of one has nobody to take turns with.
            let lock = (group.config.processes > 1)
                .then(|| RollLock::open(&group.socket))
                .transpose()
                .map_err(|e| {
                    format!(
                        "cannot open {}: {e}",
                        rolling::lock_path(&group.socket).display()
                    )
                })?;
            let (pid, mut slot) = spawn(&runtime, index, main, lock)?;
            log::info!(
                "daemon group '{}' started process {pid}, listening on {}",
                group.config.name,
                group.socket.display()
            );
            live.lock()
                .map_err(|_| "the daemon list is poisoned".to_owned())?
                .push(pid);
            let (runtime, live, ended) = (runtime.clone(), live.clone(), ended.clone());
            ffi::watch_process(main.process_pool(), pid, move |pid, exit| {
                let group = runtime.group(index).expect("a started group");
                if let Some(figures) = &group.figures {
                    let (reason, detail) = end_reason(figures, slot, pid, &exit);
                    figures.ended(slot, pid, reason, detail);
                }
                if ended.load(Ordering::Acquire) {
                    log::info!(
                        "daemon process {pid} of an earlier configuration generation has finished"
                    );
                    drop(rolling::take(pid));
                    return None;
                }
                let replacement = replace(&runtime, index, main, pid, exit);
                if let Ok(mut live) = live.lock() {
                    live.retain(|&p| p != pid);
                    live.extend(replacement.map(|(pid, _)| pid));
                }
                let (pid, new_slot) = replacement?;
                slot = new_slot;
                Some(pid)
            });
        }
    }
    let parent = std::process::id();
    // A daemon told to stop ends its requests within its group's shutdown-timeout; a second
    // more for it to exit.
    let grace = runtime
        .each_group()
        .map(|(_, g)| g.config.shutdown_timeout)
        .max()
        .unwrap_or_default()
        + std::time::Duration::from_secs(1);
    pconf.on_cleanup(move || {
        // Apache's children run the configuration's cleanups too when they exit: only the
        // parent, which started the daemons, ends them.
        if std::process::id() == parent {
            ended.store(true, Ordering::Release);
            end_generation(&live.lock().map(|l| l.clone()).unwrap_or_default(), grace);
        }
    });
    Ok(Some(runtime))
}

/// Each group's runtime on its kept socket (created for groups new to the configuration;
/// removed for groups no longer in it).
fn group_runtimes(
    groups: &[Arc<DaemonGroup>],
    prefix: &str,
    board: &Board,
) -> Result<Vec<GroupRuntime>, String> {
    let (apache_uid, _) = ffi::apache_child_user();
    let mut endpoints = ENDPOINTS
        .lock()
        .map_err(|_| "the daemon socket registry is poisoned".to_owned())?;
    endpoints.retain(|e| {
        let kept = groups.iter().any(|g| g.name == e.group);
        if !kept {
            let _ = std::fs::remove_file(&e.socket);
        }
        kept
    });
    let mut runtimes = Vec::new();
    for group in groups {
        if !endpoints.iter().any(|e| e.group == group.name) {
            let socket = PathBuf::from(format!(
                "{}/rustapp.{}.{}.sock",
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
            endpoints.push(Endpoint {
                group: group.name.clone(),
                socket,
                listener,
                token: random_token()?,
            });
        }
        let endpoint = endpoints
            .iter()
            .find(|e| e.group == group.name)
            .expect("just ensured");
        // Apache's User may have changed with the configuration.
        if os::is_root() {
            let _ = std::os::unix::fs::chown(&endpoint.socket, Some(apache_uid), None);
        }
        let listener = endpoint
            .listener
            .try_clone()
            .map_err(|e| format!("daemon group '{}': {e}", group.name))?;
        runtimes.push(GroupRuntime::new(
            group.clone(),
            endpoint.socket.clone(),
            endpoint.token,
            listener,
            board.group(group.index).cloned(),
        ));
    }
    Ok(runtimes)
}

/// A configuration generation ends. On a restart its daemons retire: they finish their
/// requests and close their connections with a goodbye while the next generation's daemons take
/// over the same sockets, so no request is lost. When Apache stops they retire within their
/// shutdown-timeout, and the sockets are removed; Apache's parent waits for them (killing any
/// still there after `grace`), so that no daemon outlives the Apache that started it.
fn end_generation(daemons: &[i32], grace: std::time::Duration) {
    let exiting = ffi::is_exiting();
    for &pid in daemons {
        let signal = if exiting {
            process::STOP_SIGNAL
        } else {
            process::RETIRE_SIGNAL
        };
        os::signal(pid, signal);
    }
    if exiting {
        if let Ok(mut endpoints) = ENDPOINTS.lock() {
            for endpoint in endpoints.drain(..) {
                let _ = std::fs::remove_file(&endpoint.socket);
                let _ = std::fs::remove_file(rolling::lock_path(&endpoint.socket));
            }
        }
        let deadline = std::time::Instant::now() + grace;
        for &pid in daemons {
            if !os::wait_for_exit(pid, deadline) {
                log::warn!("daemon process {pid} did not stop within {grace:?}; killing it");
                os::kill_and_reap(pid);
            }
        }
    }
}

/// Why a daemon ended, for its group's figures: what it said itself when it retired or
/// failed on purpose, else the signal or exit status its supervisor saw.
fn end_reason(
    figures: &GroupFigures,
    slot: Option<usize>,
    pid: i32,
    exit: &Exit,
) -> (EndReason, u64) {
    if ffi::is_stopping() {
        return (EndReason::Stopping, 0);
    }
    let said = || slot.and_then(|slot| figures.reported_reason(slot, pid));
    match exit {
        &Exit::Code(code @ (process::RETIRED | process::FAILED)) => {
            said().map_or((EndReason::ExitCode, code as u64), |reason| (reason, 0))
        }
        &Exit::Code(code) => (EndReason::ExitCode, code as u64),
        &Exit::Signal(signal) => (EndReason::Signal, signal as u64),
        // Reaped by someone else: nothing is known.
        Exit::Lost => (EndReason::Signal, 0),
    }
}

/// A daemon died: say how, and start another (with its figures' slot) unless Apache is
/// stopping.
fn replace(
    runtime: &Arc<DaemonRuntime>,
    index: GroupIndex,
    main: Server<'static>,
    pid: i32,
    exit: Exit,
) -> Option<(i32, Option<usize>)> {
    let name = &runtime.group(index).expect("a started group").config.name;
    let planned = matches!(exit, Exit::Code(process::RETIRED));
    let how = match exit {
        Exit::Code(code) => format!("exited with status {code}"),
        Exit::Signal(signal) => format!("was killed by signal {signal}"),
        Exit::Lost => "was lost".to_owned(),
    };
    // Its turn to retire, if it had it, goes to its replacement.
    let lock = rolling::take(pid);
    if ffi::is_stopping() {
        log::info!("daemon group '{name}' process {pid} {how} while Apache stops");
        return None;
    }
    match spawn(runtime, index, main, lock) {
        Ok((new_pid, slot)) if planned => {
            log::info!(
                "daemon group '{name}' process {pid} retired; started process {new_pid} in its place"
            );
            Some((new_pid, slot))
        }
        Ok((new_pid, slot)) => {
            log::error!(
                "daemon group '{name}' process {pid} {how}; started process {new_pid} in its place"
            );
            Some((new_pid, slot))
        }
        Err(e) => {
            log::error!(
                "daemon group '{name}' process {pid} {how}, and no replacement could be started: {e}"
            );
            None
        }
    }
}

/// Starts a process of group `index`: its pid, and its slot in the group's figures. `lock`
/// is its descriptor of the group's lock file (see `rolling`), which the parent keeps a copy
/// of.
fn spawn(
    runtime: &DaemonRuntime,
    index: GroupIndex,
    main: Server<'static>,
    lock: Option<RollLock>,
) -> Result<(i32, Option<usize>), String> {
    let figures = runtime.group(index).and_then(|g| g.figures.as_ref());
    let slot = figures.and_then(|f| f.reserve_slot());
    let forked = os::fork().map_err(|e| {
        if let (Some(figures), Some(slot)) = (figures, slot) {
            figures.release(slot);
        }
        format!("fork failed: {e}")
    })?;
    match forked {
        Forked::Child { parent } => {
            rolling::close_inherited();
            process::run(runtime, index, main, parent, lock, slot)
        }
        Forked::Parent(pid) => {
            if let Some(lock) = lock {
                rolling::keep(pid, lock);
            }
            if let (Some(figures), Some(slot)) = (figures, slot) {
                figures.started(slot, pid);
            }
            Ok((pid, slot))
        }
    }
}

/// Binds the group's socket so that only Apache's child user (and root) can connect.
fn listen(path: &PathBuf, backlog: u32, apache_uid: u32) -> std::io::Result<UnixListener> {
    let _ = std::fs::remove_file(path); // a stale socket from a crashed generation
    let listener = os::bind_private(path, backlog)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
    if os::is_root() {
        std::os::unix::fs::chown(path, Some(apache_uid), None)?;
    }
    Ok(listener)
}

fn random_token() -> Result<[u8; TOKEN_LEN], String> {
    let mut token = [0u8; TOKEN_LEN];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut token))
        .map_err(|e| format!("cannot read /dev/urandom for the daemons' token: {e}"))?;
    Ok(token)
}
