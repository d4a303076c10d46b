//! What the machine provides: Debian's Apache, mod_rustapp, users; and the checks that make a
//! bad library or option fail before Apache starts.

use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Group, User};

/// Where Debian's Apache keeps its modules (`apxs -q LIBEXECDIR`).
pub const MODULES_DIR: &str = "/usr/lib/apache2/modules";
const APACHE: &str = "/usr/sbin/apache2";

/// The Apache binary to run.
pub fn apache_binary() -> Result<PathBuf, String> {
    let apache = Path::new(APACHE);
    if apache.is_file() {
        Ok(apache.to_path_buf())
    } else {
        Err(format!(
            "Debian's Apache is not installed ({APACHE} is missing): apt-get install apache2"
        ))
    }
}

/// mod_rustapp.so: `--module`, else the one built next to this program (a cargo build), else
/// the one installed in Apache's modules.
pub fn find_module(explicit: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(path) = explicit {
        return absolute_file(path, "--module");
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("libmod_rustapp.so")));
    let installed = Path::new(MODULES_DIR).join("mod_rustapp.so");
    beside
        .into_iter()
        .chain([installed])
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!(
                "cannot find mod_rustapp.so beside this program or in {MODULES_DIR}: build it (cargo build --release), install it (make install), or give --module PATH"
            )
        })
}

fn absolute_file(path: &Path, what: &str) -> Result<PathBuf, String> {
    let absolute = path
        .canonicalize()
        .map_err(|e| format!("{what} {}: {e}", path.display()))?;
    if absolute.is_file() {
        Ok(absolute)
    } else {
        Err(format!("{what} {}: not a regular file", path.display()))
    }
}

/// The application library as an absolute path, loaded once here to check it is one: a
/// missing file or a library without the entry point or for another ABI stops us now, not
/// inside Apache.
pub fn check_library(path: &Path) -> Result<PathBuf, String> {
    let absolute = absolute_file(path, "the application library")?;
    let text = absolute.display().to_string();
    rustapp::loader::load_library(&text)
        .map_err(|e| format!("the application library {text} cannot serve: {e}"))?;
    Ok(absolute)
}

pub fn is_root() -> bool {
    // SAFETY: getuid has no preconditions.
    unsafe { libc::getuid() == 0 }
}

pub fn current_uid() -> u32 {
    // SAFETY: getuid has no preconditions.
    unsafe { libc::getuid() }
}

/// The user and group Apache's children and the daemons run as: only chosen when started as
/// root (`www-data` unless `--user`); otherwise everything runs as the invoking user.
pub fn run_as(user: Option<&str>, group: Option<&str>) -> Result<Option<(String, String)>, String> {
    if !is_root() {
        return match user.or(group) {
            Some(_) => Err(
                "--user and --group need rustapp-express started as root; without them everything runs as you"
                    .into(),
            ),
            None => Ok(None),
        };
    }
    let user = user.unwrap_or("www-data");
    let primary_gid = user_primary_gid(user)
        .ok_or_else(|| format!("--user {user}: no such user on this machine"))?;
    let group = match group {
        Some(group) => group_exists(group)
            .then(|| group.to_owned())
            .ok_or_else(|| format!("--group {group}: no such group on this machine"))?,
        None => group_name(primary_gid)
            .ok_or_else(|| format!("the primary group of {user} has no name"))?,
    };
    Ok(Some((user.to_owned(), group)))
}

fn user_primary_gid(user: &str) -> Option<u32> {
    Some(User::from_name(user).ok()??.gid.as_raw())
}

fn group_exists(group: &str) -> bool {
    Group::from_name(group).is_ok_and(|g| g.is_some())
}

fn group_name(gid: u32) -> Option<String> {
    Some(Group::from_gid(Gid::from_raw(gid)).ok()??.name)
}
