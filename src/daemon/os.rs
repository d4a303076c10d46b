//! The operating-system calls of daemon mode, and nothing else: forking and signalling daemons,
//! binding their sockets privately, checking a peer's user, and turning a process forked from
//! Apache's parent (running as root) into a daemon of its group: its own user and groups,
//! environment, working directory, umask.

use std::ffi::{CStr, CString};

use nix::unistd::{Group, Uid, User};

use crate::config::DaemonGroup;

/// The user the daemon becomes.
pub(crate) struct Account {
    pub(crate) name: String,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) home: String,
}

fn c(s: &str) -> Result<CString, String> {
    CString::new(s).map_err(|_| format!("'{s}' contains a NUL byte"))
}

/// Looks a user up by name, or by uid when `name` is `None`.
pub(crate) fn account(name: Option<&str>, uid: u32) -> Result<Account, String> {
    let found = match name {
        Some(name) => User::from_name(name),
        None => User::from_uid(Uid::from_raw(uid)),
    };
    let user = found
        .map_err(|e| format!("cannot look the user up: {e}"))?
        .ok_or_else(|| match name {
            Some(name) => format!("the user '{name}' does not exist"),
            None => format!("no user has uid {uid}"),
        })?;
    Ok(Account {
        name: user.name,
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
        home: user.dir.to_string_lossy().into_owned(),
    })
}

fn group_id(name: &str) -> Result<u32, String> {
    Group::from_name(name)
        .map_err(|e| format!("cannot look the group '{name}' up: {e}"))?
        .map(|group| group.gid.as_raw())
        .ok_or_else(|| format!("the group '{name}' does not exist"))
}

fn check(rc: libc::c_int, what: &str) -> Result<(), String> {
    if rc == 0 {
        Ok(())
    } else {
        Err(format!("{what}: {}", std::io::Error::last_os_error()))
    }
}

/// Applies the group's user, environment, directory and umask to this process. `apache_uid`
/// is the default user (Apache's `User`). Refuses to leave the process running as root.
pub(crate) fn become_daemon(group: &DaemonGroup, apache_uid: u32) -> Result<Account, String> {
    // SAFETY: getuid has no preconditions.
    let started_as_root = unsafe { libc::getuid() } == 0;
    let account = match &group.user {
        Some(name) => account(Some(name), 0)?,
        None if started_as_root => account(None, apache_uid)?,
        // SAFETY: as above.
        None => account(None, unsafe { libc::getuid() })?,
    };
    if account.uid == 0 {
        return Err(
            "daemon processes never run as root; give the group a user= or Apache a User".into(),
        );
    }
    let gid = match &group.group {
        Some(name) => group_id(name)?,
        None => account.gid,
    };
    let extra_groups = group
        .supplementary_groups
        .iter()
        .map(|name| group_id(name).map(nix::unistd::Gid::from_raw))
        .collect::<Result<Vec<_>, _>>()?;
    if !started_as_root && !extra_groups.is_empty() {
        return Err(
            "Apache does not run as root, so its daemons cannot join supplementary-groups".into(),
        );
    }
    if let Some(nice) = group.cpu_priority {
        // Before dropping root, which may raise a priority; anyone may lower their own.
        // SAFETY: setpriority changes only this process's nice value.
        let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) };
        check(rc, &format!("cpu-priority={nice}"))?;
    }
    // SAFETY: plain system calls on this process; the name is NUL-terminated.
    unsafe {
        if started_as_root {
            check(libc::setgid(gid), "setgid")?;
            check(
                libc::initgroups(c(&account.name)?.as_ptr(), gid),
                "initgroups",
            )?;
            if !extra_groups.is_empty() {
                let mut groups = nix::unistd::getgroups().map_err(|e| format!("getgroups: {e}"))?;
                groups.extend(extra_groups);
                nix::unistd::setgroups(&groups)
                    .map_err(|e| format!("supplementary-groups: {e}"))?;
            }
            check(libc::setuid(account.uid), "setuid")?;
        } else if account.uid != libc::getuid() {
            return Err(format!(
                "Apache does not run as root, so its daemons cannot become '{}'",
                account.name
            ));
        }
        if libc::getuid() == 0 || libc::geteuid() == 0 {
            return Err("the process is still root after dropping privileges".into());
        }
    }

    // Exactly the group's environment, plus what any process expects to find.
    let home = group.home.clone().unwrap_or_else(|| account.home.clone());
    scrub_inherited_environment();
    // SAFETY: single-threaded here, so nothing reads the environment concurrently.
    unsafe {
        libc::clearenv();
        for (key, value) in [
            ("PATH", "/usr/local/bin:/usr/bin:/bin"),
            ("HOME", home.as_str()),
            ("USER", account.name.as_str()),
            ("LOGNAME", account.name.as_str()),
        ]
        .into_iter()
        .chain(group.env.iter())
        {
            std::env::set_var(key, value);
        }
    }
    match (std::env::set_current_dir(&home), &group.home) {
        (Ok(()), _) => {}
        (Err(e), Some(_)) => {
            return Err(format!("cannot change to the home directory {home}: {e}"));
        }
        // System users often have no home (Debian's useradd --system: /nonexistent). Not
        // being able to enter one nobody asked for is no reason to refuse to serve.
        (Err(e), None) => {
            log::info!(
                "the home directory {home} of {} cannot be entered ({e}); working in / (set home= to choose)",
                account.name
            );
            std::env::set_current_dir("/").map_err(|e| format!("cannot change to /: {e}"))?;
        }
    }
    if let Some(mask) = group.umask {
        // SAFETY: umask only changes this process's file creation mask.
        unsafe { libc::umask(mask as libc::mode_t) };
    }
    Ok(account)
}

unsafe extern "C" {
    static mut environ: *mut *mut libc::c_char;
}

/// Overwrites the environment strings inherited from Apache's parent in place: `clearenv` only
/// forgets them, and `/proc/PID/environ`, readable by the daemon's user, would still show them.
fn scrub_inherited_environment() {
    // SAFETY: single-threaded; `environ` is a null-terminated array of NUL-terminated strings,
    // each overwritten only within its own length, and forgotten by `clearenv` right after.
    unsafe {
        let mut entry = environ;
        while !entry.is_null() && !(*entry).is_null() {
            let len = CStr::from_ptr(*entry).to_bytes().len();
            std::ptr::write_bytes(*entry, 0, len);
            entry = entry.add(1);
        }
    }
}

/// Names this process's thread in `top`/`ps -L` (15 bytes at most).
pub(crate) fn set_thread_name(name: &str) {
    if let Ok(name) = CString::new(name.chars().take(15).collect::<String>()) {
        // SAFETY: PR_SET_NAME copies at most 16 bytes from a NUL-terminated string.
        unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr()) };
    }
}

/// Set when the supervisor asks this daemon to retire (SIGUSR1); the request server checks it.
pub(crate) static RETIRE_REQUESTED: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Set when Apache stops (SIGUSR2): retire within shutdown-timeout.
pub(crate) static STOP_REQUESTED: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_stop_signal(_signal: libc::c_int) {
    STOP_REQUESTED.store(true, std::sync::atomic::Ordering::Release);
}

extern "C" fn on_retire_signal(_signal: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    RETIRE_REQUESTED.store(true, std::sync::atomic::Ordering::Release);
}

/// Puts the signal handling a forked copy of Apache's parent inherited back to defaults: the
/// daemon dies on SIGTERM, and writes to a closed socket fail instead of killing it.
pub(crate) fn reset_signals() {
    // SAFETY: installing default dispositions in a single-threaded process.
    unsafe {
        for signal in [
            libc::SIGTERM,
            libc::SIGINT,
            libc::SIGHUP,
            libc::SIGWINCH,
            libc::SIGCHLD,
        ] {
            libc::signal(signal, libc::SIG_DFL);
        }
        // The supervisor asks a daemon to retire with it (a restart of Apache).
        libc::signal(
            libc::SIGUSR1,
            on_retire_signal as *const () as libc::sighandler_t,
        );
        // ... and with this one when Apache stops.
        libc::signal(
            libc::SIGUSR2,
            on_stop_signal as *const () as libc::sighandler_t,
        );
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
    }
}

/// This process's user id.
pub(crate) fn current_uid() -> u32 {
    // SAFETY: getuid has no preconditions.
    unsafe { libc::getuid() }
}

/// Whether this process runs as root.
pub(crate) fn is_root() -> bool {
    current_uid() == 0
}

/// Sends `signal` to process `pid`.
pub(crate) fn signal(pid: i32, signal: i32) {
    // SAFETY: kill only signals; the caller names processes it started.
    unsafe { libc::kill(pid, signal) };
}

/// Waits until child `pid` has exited (and reaps it), up to `deadline`. `true` once it is
/// gone, also when someone else reaped it already.
pub(crate) fn wait_for_exit(pid: i32, deadline: std::time::Instant) -> bool {
    loop {
        // SAFETY: waitpid on a child this process started, without blocking.
        let reaped = unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
        if reaped != 0 {
            return true; // exited now (pid), or not our child any more (-1, ECHILD)
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Kills child `pid` and reaps it.
pub(crate) fn kill_and_reap(pid: i32) {
    // SAFETY: signals and reaps a child this process started.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
    }
}

/// Which side of a fork this is: the child knows its parent's pid, the parent its child's.
pub(crate) enum Forked {
    Child { parent: i32 },
    Parent(i32),
}

/// Forks this process. Only sound while the process is single-threaded (Apache's parent).
pub(crate) fn fork() -> std::io::Result<Forked> {
    let parent = std::process::id() as i32;
    // SAFETY: called only from Apache's single-threaded parent; the child runs a daemon and
    // leaves with `exit_now`.
    match unsafe { libc::fork() } {
        -1 => Err(std::io::Error::last_os_error()),
        0 => Ok(Forked::Child { parent }),
        pid => Ok(Forked::Parent(pid)),
    }
}

/// Has the kernel send this process `signal` when `parent`, the Apache parent that forked
/// it, dies without stopping it (killed, or crashed): so that no daemon outlives its Apache.
/// To be called after the change of user, which clears the request; a parent already gone
/// by then is answered at once.
pub(crate) fn signal_when_parent_dies(parent: i32, signal: i32) {
    // SAFETY: PR_SET_PDEATHSIG takes a signal number; getppid and raise have no
    // preconditions, and the signal's handler is installed (`reset_signals`).
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong);
        if libc::getppid() != parent {
            libc::raise(signal);
        }
    }
}

/// Leaves without running the exit handlers and pool cleanups inherited from Apache's parent.
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: _exit ends the process immediately.
    unsafe { libc::_exit(code) }
}

/// Binds a UNIX socket that only its owner can connect to (mode 0700 from the start), with a
/// listen backlog of `backlog`.
pub(crate) fn bind_private(
    path: &std::path::Path,
    backlog: u32,
) -> std::io::Result<std::os::unix::net::UnixListener> {
    // SAFETY: umask only changes this process's file creation mask; restored right after.
    let previous = unsafe { libc::umask(0o077) };
    let bound = std::os::unix::net::UnixListener::bind(path);
    // SAFETY: as above.
    unsafe { libc::umask(previous) };
    let listener = bound?;
    // std's backlog is fixed at 128: listen again with the group's.
    // SAFETY: listen() on our own listening socket.
    unsafe {
        libc::listen(
            std::os::fd::AsRawFd::as_raw_fd(&listener),
            backlog as libc::c_int,
        )
    };
    Ok(listener)
}

/// The user on the other end of a UNIX socket, as the kernel reports it.
pub(crate) fn peer_uid(stream: &std::os::unix::net::UnixStream) -> std::io::Result<u32> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: SO_PEERCRED fills a `ucred` of the length given.
    let rc = unsafe {
        libc::getsockopt(
            std::os::fd::AsRawFd::as_raw_fd(stream),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&raw mut cred).cast(),
            &mut len,
        )
    };
    if rc == 0 {
        Ok(cred.uid)
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// What a connection's sender may have in flight, asked of the kernel (which doubles it for
/// its own bookkeeping and caps it at `net.core.wmem_max`). Its default, about 208 KiB, split
/// every 1 MiB body piece into several wake-ups of each side; with room for a whole piece the
/// sender writes the next while the receiver forwards the last. A loopback TCP socket grows
/// to 4 MiB by itself.
const SEND_BUFFER: usize = 512 * 1024;

/// Gives a daemon connection room for a whole body piece in flight (see `SEND_BUFFER`). Best
/// effort: a smaller buffer only costs speed.
pub(crate) fn widen_send_buffer(stream: &std::os::unix::net::UnixStream) {
    let _ = nix::sys::socket::setsockopt(stream, nix::sys::socket::sockopt::SndBuf, &SEND_BUFFER);
}

/// Writes what the socket takes now of `parts`, in order, without waiting: the count written,
/// or `WouldBlock` when it takes nothing.
pub(crate) fn send_now(
    stream: &std::os::unix::net::UnixStream,
    parts: &[std::io::IoSlice<'_>],
) -> std::io::Result<usize> {
    // SAFETY: a zeroed msghdr is valid; it points at `parts`, which outlives the call (an
    // `IoSlice` is an `iovec` on Unix, as std guarantees).
    let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
    message.msg_iov = parts.as_ptr().cast_mut().cast::<libc::iovec>();
    message.msg_iovlen = parts.len();
    // SAFETY: sendmsg reads the buffers the iovecs describe.
    let sent = unsafe {
        libc::sendmsg(
            std::os::fd::AsRawFd::as_raw_fd(stream),
            &message,
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    usize::try_from(sent).map_err(|_| std::io::Error::last_os_error())
}

/// Sends `data` with descriptor `fd` attached (SCM_RIGHTS), waiting for room as a blocking
/// write does. The peer receives its own copy of the descriptor.
pub(crate) fn send_with_fd(
    stream: &std::os::unix::net::UnixStream,
    data: &[u8],
    fd: std::os::fd::BorrowedFd<'_>,
) -> std::io::Result<()> {
    use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
    use std::os::fd::AsRawFd;
    let fds = [fd.as_raw_fd()];
    let control = [ControlMessage::ScmRights(&fds)];
    let mut data = data;
    let mut first = true;
    while !data.is_empty() {
        let parts = [std::io::IoSlice::new(data)];
        // The descriptor travels with the first byte only.
        let control: &[ControlMessage<'_>] = if first { &control } else { &[] };
        let sent = sendmsg::<()>(
            stream.as_raw_fd(),
            &parts,
            control,
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .map_err(std::io::Error::from)?;
        first = false;
        data = &data[sent..];
    }
    Ok(())
}

/// Reads into `buf` like `read`, keeping descriptors the peer attached in `received`. Every
/// frame of every request is read through here: the control message's room is on the stack.
pub(crate) fn recv_with_fds(
    stream: &std::os::unix::net::UnixStream,
    buf: &mut [u8],
    received: &mut Vec<std::os::fd::OwnedFd>,
) -> std::io::Result<usize> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
    /// Room for one `SCM_RIGHTS` message of two descriptors, aligned as `cmsghdr` needs.
    #[repr(C, align(8))]
    struct Control([u8; 64]);
    let mut control = Control([0; 64]);
    // SAFETY: CMSG_SPACE only computes a size.
    let room = unsafe { libc::CMSG_SPACE(2 * size_of::<RawFd>() as u32) } as usize;
    debug_assert!(room <= control.0.len());
    let mut part = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: an all-zero msghdr is a valid empty one; its pointers are set just below.
    let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
    message.msg_iov = &mut part;
    message.msg_iovlen = 1;
    message.msg_control = control.0.as_mut_ptr().cast();
    message.msg_controllen = room as _;
    // SAFETY: `message` describes `buf` and `control`, both live and writable for the call.
    let read = unsafe { libc::recvmsg(stream.as_raw_fd(), &mut message, libc::MSG_CMSG_CLOEXEC) };
    if read < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel filled `control` and set `msg_controllen`; the CMSG macros walk only
    // inside it, and each SCM_RIGHTS entry holds the descriptors it says it holds.
    unsafe {
        let mut header = libc::CMSG_FIRSTHDR(&message);
        while !header.is_null() {
            if (*header).cmsg_level == libc::SOL_SOCKET && (*header).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(header).cast::<RawFd>();
                let bytes = (*header).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                for at in 0..bytes / size_of::<RawFd>() {
                    // Descriptors the kernel just installed in this process, owned from here.
                    received.push(OwnedFd::from_raw_fd(data.add(at).read_unaligned()));
                }
            }
            header = libc::CMSG_NXTHDR(&message, header);
        }
    }
    Ok(read as usize)
}

/// Reads up to `max` bytes into the spare capacity of `buffer`, without zeroing it first: the
/// rest of a large body piece lands where the decoder keeps it, in one system call. Nothing
/// but `Switched` carries a descriptor; one attached to these bytes is closed by the kernel.
pub(crate) fn recv_into_spare(
    stream: &std::os::unix::net::UnixStream,
    buffer: &mut bytes::BytesMut,
    max: usize,
) -> std::io::Result<usize> {
    buffer.reserve(max);
    let spare = buffer.spare_capacity_mut();
    let (start, len) = (spare.as_mut_ptr(), max.min(spare.len()));
    loop {
        // SAFETY: recv writes at most `len` bytes into the spare capacity, which `buffer` owns.
        let read = unsafe {
            libc::recv(
                std::os::fd::AsRawFd::as_raw_fd(stream),
                start.cast(),
                len,
                0,
            )
        };
        match usize::try_from(read) {
            Ok(n) => {
                // SAFETY: the kernel initialised these `n` bytes, just past the buffer's end.
                unsafe { buffer.set_len(buffer.len() + n) };
                return Ok(n);
            }
            Err(_) => {
                let error = std::io::Error::last_os_error();
                if error.kind() != std::io::ErrorKind::Interrupted {
                    return Err(error);
                }
            }
        }
    }
}

/// Raises this process's limit of open descriptors to its hard limit: a daemon holds a
/// connection for every Apache thread that streams from it, which can be thousands.
pub(crate) fn raise_open_files_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write one rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// Whether descriptor `fd` becomes writable within `limit`.
pub(crate) fn writable_within(fd: std::os::fd::RawFd, limit: std::time::Duration) -> bool {
    let mut poll = libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    };
    let millis = i32::try_from(limit.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: one pollfd in a live variable.
    unsafe { libc::poll(&mut poll, 1, millis) > 0 && poll.revents & libc::POLLOUT != 0 }
}

/// Whether descriptor `fd` is readable (or hung up) right now.
pub(crate) fn readable_now(fd: std::os::fd::RawFd) -> bool {
    let mut poll = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one pollfd in a live variable.
    unsafe { libc::poll(&mut poll, 1, 0) > 0 && poll.revents != 0 }
}

pub(crate) use crate::ffi::monotonic_us;

/// This process's resident memory in bytes (`VmRSS`), for `memory-limit`.
pub(crate) fn resident_bytes() -> Option<u64> {
    crate::figures::resident_bytes("self")
}

/// The CPU time this process has used, in user and kernel mode, for `cpu-time-limit`.
pub(crate) fn cpu_time() -> Option<std::time::Duration> {
    use nix::sys::resource::{UsageWho, getrusage};
    let usage = getrusage(UsageWho::RUSAGE_SELF).ok()?;
    let micros = |t: nix::sys::time::TimeVal| {
        u64::try_from(t.tv_sec()).unwrap_or(0) * 1_000_000 + u64::try_from(t.tv_usec()).unwrap_or(0)
    };
    Some(std::time::Duration::from_micros(
        micros(usage.user_time()) + micros(usage.system_time()),
    ))
}

/// Takes an exclusive `flock` on `fd`'s open file, unless another holds it.
pub(crate) fn try_lock(fd: std::os::fd::BorrowedFd<'_>) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a live descriptor.
    unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

/// Lets go of the `flock` `fd`'s open file holds, if any.
pub(crate) fn unlock(fd: std::os::fd::BorrowedFd<'_>) {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a live descriptor.
    unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_UN) };
}
