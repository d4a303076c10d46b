//! A daemon process: forked from Apache's parent, it becomes its group's user with its group's
//! environment, then serves the group's socket until it is told to stop.

use std::sync::Arc;
use std::time::Duration;

use rustapp_daemon_protocol::Limits;

use super::elastic;
use super::os::{
    become_daemon, exit_now, raise_open_files_limit, reset_signals, set_thread_name,
    signal_when_parent_dies,
};
use super::request_state::{DAEMON_HOST_V1, DaemonAppContext};
use super::rolling::RollLock;
use super::runtime::DaemonRuntime;
use super::server::{DaemonApps, LazyApp, Recycle, ServeOptions, serve};
use crate::config::{AppEntry, DaemonGroup, GroupIndex};
use crate::ffi::{self, Server, server_log_scope};
use crate::figures::{self, EndReason, ProcessFigures};
use crate::host::{AppInstance, load_library};

/// A daemon that fails while starting waits this long before exiting, so a broken group is
/// retried three times a minute, not in a tight loop (mod_wsgi's fork-bomb guard).
const STARTUP_FAILURE_DELAY: Duration = Duration::from_secs(20);

/// Runs daemon `index` of `runtime` in this process, just forked by Apache's parent `parent`;
/// never returns. `lock` is its descriptor of the group's lock file (see `rolling`); `slot`
/// its place in the group's figures.
pub(crate) fn run(
    runtime: &DaemonRuntime,
    index: GroupIndex,
    main: Server<'static>,
    parent: i32,
    lock: Option<RollLock>,
    slot: Option<usize>,
) -> ! {
    let _scope = server_log_scope(main);
    let group = runtime.group(index).expect("a started group");
    // Still the only thread: what is not this process's to write leaves it.
    figures::keep_only_process_slots_of(group.figures.as_deref());
    let figures = ProcessFigures::new(group.figures.clone(), slot);
    reset_signals();
    raise_open_files_limit();
    ffi::close_http_listeners();
    let name = group.config.name.clone();
    let listener = group.listener_for_daemon();
    // Other groups' sockets are not this daemon's.
    runtime.close_listeners();
    let (apache_uid, _) = ffi::apache_child_user();

    let started = listener.map_err(|e| e.to_string()).and_then(|listener| {
        let account = become_daemon(&group.config, apache_uid)?;
        Ok((listener, account))
    });
    // An Apache parent killed or crashed cannot tell its daemons to stop: they stop when it
    // dies, as they would when it stops (after the change of user, which clears this).
    signal_when_parent_dies(parent, STOP_SIGNAL);
    let (listener, account) = match started {
        Ok(ready) => ready,
        Err(reason) => {
            log::error!(
                "daemon group '{name}' process {} cannot start: {reason}; retrying in {} s",
                std::process::id(),
                STARTUP_FAILURE_DELAY.as_secs()
            );
            figures.ending(EndReason::StartFailed);
            std::thread::sleep(STARTUP_FAILURE_DELAY);
            exit_now(FAILED);
        }
    };
    if let Some(title) = group.config.process_title() {
        ffi::set_process_title(main, &title);
        set_thread_name(&title);
    }
    if let (Some(min), Some(slot)) = (group.config.min_processes, slot) {
        // A spare adds no capacity to wait for: another process may take its turn to retire.
        if let Some(lock) = &lock {
            lock.let_go();
        }
        if let Err(reason) = elastic::wait_until_needed(&figures, min as usize, slot) {
            figures.ending(reason);
            log::info!(
                "daemon group '{name}' process {} leaves as a spare: {}",
                std::process::id(),
                reason.name()
            );
            exit_now(RETIRED);
        }
    }

    // startup-timeout: applications that do not finish starting in time cost the process.
    let started = Arc::new(std::sync::atomic::AtomicBool::new(false));
    if let Some(limit) = group.config.startup_timeout {
        let (started, name, figures) = (started.clone(), name.clone(), figures.clone());
        std::thread::spawn(move || {
            std::thread::sleep(limit);
            if !started.load(std::sync::atomic::Ordering::Acquire) {
                figures.ending(EndReason::StartupTimeout);
                log::error!(
                    "daemon group '{name}' process {} did not start its applications within its startup-timeout of {} s; it is replaced",
                    std::process::id(),
                    limit.as_secs()
                );
                exit_now(FAILED);
            }
        });
    }
    let apps = runtime
        .apps
        .by_index()
        .map(|entry| entry.map(|entry| lazy_app(entry, &group.config)))
        .collect();
    started.store(true, std::sync::atomic::Ordering::Release);
    log::info!(
        "daemon group '{name}' process {} serving as {} (uid {}) with {} threads",
        std::process::id(),
        account.name,
        account.uid,
        group.config.threads
    );
    // It serves: another process of the group may take its turn to retire (a replacement got
    // the turn of the process it replaces).
    if let Some(lock) = &lock {
        lock.let_go();
    }
    figures.serving();
    let options = ServeOptions {
        threads: group.config.threads as usize,
        token: group.token,
        allowed_uid: apache_uid,
        limits: Limits::default(),
        socket_timeout: group.config.socket_timeout,
        request_timeout: group.config.request_timeout,
        queue_timeout: group.config.queue_timeout,
        max_tunnels: group.config.max_tunnels as usize,
        stack_size: group.config.stack_size,
        roll_lock: lock.map(Arc::new),
        figures,
        recycle: Recycle {
            maximum_requests: group.config.maximum_requests,
            inactivity_timeout: group.config.inactivity_timeout,
            graceful_timeout: group.config.graceful_timeout,
            shutdown_timeout: group.config.shutdown_timeout,
            restart_interval: group.config.restart_interval,
            restart_file: group.config.restart_file.as_ref().map(Into::into),
            memory_limit: group.config.memory_limit,
            cpu_time_limit: group.config.cpu_time_limit,
            // Without a figures slot, every process of the group serves.
            elastic_min: group
                .config
                .min_processes
                .filter(|_| slot.is_some())
                .map(|min| min as usize),
            idle_timeout: group.config.idle_timeout,
        },
    };
    // The applications live as long as this process (which ends with `exit_now`), and are
    // cleaned up before it ends when their requests did.
    let apps: &'static DaemonApps = Box::leak(Box::new(DaemonApps::new(apps)));
    match serve(listener, apps, options) {
        Ok(retired) => {
            log::info!(
                "daemon group '{name}' process {} retired: {}",
                std::process::id(),
                retired.reason
            );
            match retired.clean_up_until {
                Some(until) => clean_up(apps, until, &name),
                None => log::warn!(
                    "daemon group '{name}' process {}: requests were cut off, so its applications' clean-up (Drop) is not run",
                    std::process::id()
                ),
            }
            exit_now(RETIRED)
        }
        Err(e) => {
            log::error!(
                "daemon group '{name}' process {} stopped serving: {e}",
                std::process::id()
            );
            exit_now(FAILED)
        }
    }
}

/// Least time the applications' clean-up gets, however long the last requests took (Apache's
/// parent waits a second past shutdown-timeout for a stopping daemon).
const LEAST_CLEAN_UP: std::time::Duration = std::time::Duration::from_secs(1);

/// Runs the applications' clean-up (their `Drop`, through the ABI's `destroy`), as embedded
/// mode does when an Apache child ends, so that what an application keeps in memory (batched
/// writes, a cache to save) is not lost on every recycle, restart and stop. It gets until the
/// retirement's limit; a clean-up that takes longer is left behind when the process ends.
fn clean_up(apps: &'static DaemonApps, until: std::time::Instant, group: &str) {
    let (done, finished) = std::sync::mpsc::channel();
    let started = std::thread::Builder::new()
        .name("rustapp-clean-up".into())
        .spawn(move || {
            apps.stop_all();
            let _ = done.send(());
        });
    if let Err(e) = started {
        log::warn!(
            "daemon group '{group}' process {}: cannot start a thread for its applications' clean-up ({e}); the process ends without it",
            std::process::id()
        );
        return;
    }
    let left = until
        .saturating_duration_since(std::time::Instant::now())
        .max(LEAST_CLEAN_UP);
    if finished.recv_timeout(left).is_err() {
        log::warn!(
            "daemon group '{group}' process {}: its applications' clean-up did not finish within {} ms (graceful-timeout, or shutdown-timeout when Apache stops); the process ends without it",
            std::process::id(),
            left.as_millis()
        );
    }
}

/// Application `entry` as daemon group `group` starts it. Applications mounted into this group
/// by name start at once, so that a broken library shows up in the log at once; others on
/// their first request. A user store started for authentication alone waits for its first
/// check: when an alias of the same library answers for it, it is never asked, and never
/// started.
fn lazy_app(entry: &AppEntry, group: &DaemonGroup) -> LazyApp {
    let (alias, settings, server) = (entry.alias.clone(), entry.settings.clone(), entry.server);
    let preload = alias.process_group == Some(group.index) && !alias.authentication_only;
    let library = alias.library.clone().into();
    let label = format!("{alias} in daemon group '{}'", group.name);
    let start = move || {
        let _scope = server_log_scope(server);
        let table = load_library(&alias.library).map_err(|e| e.to_string())?;
        let context = Box::new(DaemonAppContext {
            label: label.clone(),
        });
        AppInstance::create(
            table,
            &DAEMON_HOST_V1,
            context,
            alias.mount.script_name(),
            &alias.library,
            &settings,
        )
    };
    LazyApp::new(Box::new(start), Some(library), preload)
}

/// The exit status of a daemon that retired as planned (recycling), for the supervisor.
pub(crate) const RETIRED: i32 = 0;
/// The exit status of a daemon that could not start or serve: above 64, so the supervisor can
/// tell it from a signal number (see `ffi::Exit`). 70 is sysexits' EX_SOFTWARE.
pub(crate) const FAILED: i32 = 70;

/// What the supervisor sends a daemon to make it retire (a graceful restart of Apache).
pub(crate) const RETIRE_SIGNAL: i32 = libc::SIGUSR1;

/// What the supervisor sends when Apache stops: retire within shutdown-timeout.
pub(crate) const STOP_SIGNAL: i32 = libc::SIGUSR2;
