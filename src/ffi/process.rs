//! Apache's process-level facts and supervision of processes the parent forks (daemons).

use std::ffi::{CStr, c_int, c_void};

use super::entry::guard;
use super::pool::Pool;
use super::server::Server;
use super::sys;

/// The user and group Apache's children run as: `User` and `Group` when Apache starts as root;
/// otherwise Apache cannot switch, and its children are whoever started it.
pub(crate) fn apache_child_user() -> (u32, u32) {
    // SAFETY: getuid/getgid have no preconditions; a plain read of Apache's configuration
    // global, set before any hook runs.
    unsafe {
        if libc::geteuid() != 0 {
            return (libc::getuid(), libc::getgid());
        }
        (sys::ap_unixd_config.user_id, sys::ap_unixd_config.group_id)
    }
}

/// Whether this `post_config` is the one after which Apache really serves: not a configuration
/// test (`apache2 -t`) and not the first of the two configuration passes at start-up.
pub(crate) fn is_serving_start() -> bool {
    // SAFETY: ap_state_query only reads Apache's state.
    unsafe {
        sys::ap_state_query(sys::AP_SQ_RUN_MODE) == sys::AP_SQ_RM_NORMAL
            && sys::ap_state_query(sys::AP_SQ_MAIN_STATE) != sys::AP_SQ_MS_CREATE_PRE_CONFIG
    }
}

/// Whether Apache is exiting (rather than restarting) while its configuration is torn down.
pub(crate) fn is_exiting() -> bool {
    // SAFETY: ap_state_query only reads Apache's state.
    unsafe { sys::ap_state_query(sys::AP_SQ_MAIN_STATE) == sys::AP_SQ_MS_EXITING }
}

/// How many threads each Apache child serves requests with (`ThreadsPerChild`; 1 for
/// prefork).
pub(crate) fn threads_per_child() -> usize {
    let mut threads: c_int = 0;
    // SAFETY: ap_mpm_query writes one int.
    let known = unsafe { sys::ap_mpm_query(sys::AP_MPMQ_MAX_THREADS, &mut threads) } == 0;
    if known {
        usize::try_from(threads).unwrap_or(1).max(1)
    } else {
        1
    }
}

/// Whether Apache is shutting down (a dead daemon must then not be replaced).
pub(crate) fn is_stopping() -> bool {
    let mut state: c_int = 0;
    // SAFETY: ap_mpm_query writes one int.
    let known = unsafe { sys::ap_mpm_query(sys::AP_MPMQ_MPM_STATE, &mut state) } == 0;
    !known || state == sys::AP_MPMQ_STOPPING
}

/// The path under `DefaultRuntimeDir` for `name`.
pub(crate) fn runtime_path(pool: Pool<'_>, name: &str) -> String {
    let name = pool.c_string(name.as_bytes());
    // SAFETY: returns a pool string (or null).
    let path = unsafe { sys::ap_runtime_dir_relative(pool.raw(), name.as_ptr()) };
    if path.is_null() {
        return name.to_string_lossy().into_owned();
    }
    // SAFETY: a NUL-terminated pool string.
    unsafe { CStr::from_ptr(path) }
        .to_string_lossy()
        .into_owned()
}

/// In a process forked from Apache's parent: closes the sockets Apache listens on for HTTP,
/// which only Apache's children may accept from.
pub(crate) fn close_http_listeners() {
    // SAFETY: closes this process's copies of the listening sockets.
    unsafe { sys::ap_close_listeners() }
}

/// Shows `title` in `ps` for this process by overwriting its command line in place: the
/// memory the kernel reports as the argument area (`arg_start`..`arg_end` in /proc/self/stat),
/// which begins with Apache's argv[0]. That area is all the room there is.
pub(crate) fn set_process_title(server: Server<'_>, title: &str) {
    let Some((arg_start, arg_end)) = argument_area() else {
        return;
    };
    // SAFETY: argv[0] is this process's own string; the area is only written when argv[0] is
    // where the kernel says the argument area starts, and only within that area, which nothing
    // reads after start-up but `ps`.
    unsafe {
        let process = (*server.raw()).process;
        if process.is_null() || (*process).argv.is_null() || (*(*process).argv).is_null() {
            return;
        }
        let start = (*(*process).argv).cast_mut();
        if start as usize != arg_start || arg_end <= arg_start {
            return;
        }
        let room = arg_end - arg_start - 1; // keep the final NUL
        let title = &title.as_bytes()[..title.len().min(room)];
        std::ptr::write_bytes(start, 0, room);
        std::ptr::copy_nonoverlapping(title.as_ptr(), start.cast::<u8>(), title.len());
    }
}

/// `arg_start` and `arg_end` of this process (fields 48 and 49 of /proc/self/stat).
fn argument_area() -> Option<(usize, usize)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // The first field after ')' is field 3.
    let field = |n: usize| fields.get(n - 3)?.parse::<usize>().ok();
    Some((field(48)?, field(49)?))
}

/// How a watched process ended.
pub(crate) enum Exit {
    Code(i32),
    Signal(i32),
    /// The parent lost track of it.
    Lost,
}

impl Exit {
    /// What the MPM passes other-child watchers: not a wait status but APR's decoded one, the
    /// exit code or the signal number, without saying which (`ap_process_child_status` has the
    /// same `status`). Signals are 1 to 64, so the daemons exit with 0 or codes above 64 (see
    /// `daemon::process`); a small code can only come from application code calling `exit`.
    fn from_apache_status(status: c_int) -> Exit {
        if (1..=64).contains(&status) {
            Exit::Signal(status)
        } else {
            Exit::Code(status)
        }
    }
}

type OnExit = Box<dyn FnMut(i32, Exit) -> Option<i32>>;

struct Watched {
    process: sys::apr_proc_t,
    on_exit: OnExit,
    /// Where the registration lives (re-registered there for a replacement).
    pool: Pool<'static>,
}

/// Watches child process `pid` from Apache's parent: Apache's maintenance loop reports its death
/// to `on_exit(pid, how)`, which may return the pid of a replacement to watch instead. Watching
/// goes on across restarts of Apache (which do not notify watchers), so `pool` must outlive
/// configuration generations (the process pool) and `on_exit` must know when its generation
/// ended; ending the process is the caller's business.
pub(crate) fn watch_process(
    pool: Pool<'static>,
    pid: i32,
    on_exit: impl FnMut(i32, Exit) -> Option<i32> + 'static,
) {
    let watched = pool.adopt(Watched {
        process: sys::apr_proc_t {
            pid,
            ..Default::default()
        },
        on_exit: Box::new(on_exit),
        pool,
    });
    // SAFETY: `watched` lives until the pool is cleared; both registrations end then.
    unsafe {
        register(watched, pool);
    }
}

/// # Safety
/// `watched` must live until `pool` is cleared.
unsafe fn register(watched: *mut Watched, pool: Pool<'static>) {
    // SAFETY: per the contract.
    unsafe {
        sys::apr_proc_other_child_register(
            &raw mut (*watched).process,
            Some(on_maintenance),
            watched.cast::<c_void>(),
            std::ptr::null_mut(),
            pool.raw(),
        );
    }
}

unsafe extern "C" fn on_maintenance(reason: c_int, data: *mut c_void, status: c_int) {
    guard((), || {
        let watched = data.cast::<Watched>();
        let exit = match reason {
            sys::APR_OC_REASON_DEATH => Exit::from_apache_status(status),
            sys::APR_OC_REASON_LOST => Exit::Lost,
            _ => return,
        };
        // SAFETY: `watched` is alive until the pool it was adopted by is cleared, which also
        // unregisters it; the maintenance loop runs in the parent's only thread.
        unsafe {
            sys::apr_proc_other_child_unregister(data);
            let old = (*watched).process.pid;
            if let Some(replacement) = ((*watched).on_exit)(old, exit) {
                (*watched).process.pid = replacement;
                register(watched, (*watched).pool);
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::Exit;

    #[test]
    fn apache_statuses_are_signals_up_to_64_and_exit_codes_above() {
        assert!(matches!(Exit::from_apache_status(0), Exit::Code(0)));
        assert!(matches!(Exit::from_apache_status(9), Exit::Signal(9)));
        assert!(matches!(Exit::from_apache_status(6), Exit::Signal(6)));
        assert!(matches!(Exit::from_apache_status(70), Exit::Code(70)));
    }
}
