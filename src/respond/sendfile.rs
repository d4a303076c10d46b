//! A file an application names (`X-Sendfile`) and Apache sends itself: sendfile, ranges,
//! ETag and conditional requests, as for a static file. Only a file whose real path (symbolic
//! links followed, as opened) lies under a `RustAppSendfileRoot` of the URL; anything else is
//! refused with a log line.

use std::ffi::OsStr;
use std::fmt::Display;
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::ffi::{HttpStatus, Request};

/// Sends the file `named` as the body with the application's `status`. `opened`: the file as
/// a daemon opened it with its own rights; else Apache opens it.
pub(crate) fn send_named_file(
    request: Request<'_>,
    who: &dyn Display,
    named: &[u8],
    opened: Option<OwnedFd>,
    roots: &[PathBuf],
    status: u16,
) -> Result<(), HttpStatus> {
    let shown = String::from_utf8_lossy(named);
    let refuse = |why: &str| {
        log::error!(
            "{who} asked Apache to send {shown:?} (X-Sendfile), which {why}; answering 500"
        );
        HttpStatus::INTERNAL_SERVER_ERROR
    };
    if roots.is_empty() {
        return Err(refuse(
            "is not allowed here: no RustAppSendfileRoot covers this URL",
        ));
    }
    let file = match opened {
        Some(file) => file,
        None => {
            let path = Path::new(OsStr::from_bytes(named));
            if !path.is_absolute() {
                return Err(refuse("is not an absolute path"));
            }
            match File::open(path) {
                Ok(file) => OwnedFd::from(file),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    log::info!("{who}: X-Sendfile {shown:?} does not exist; answering 404");
                    return Err(HttpStatus::NOT_FOUND);
                }
                Err(e) => return Err(refuse(&format!("Apache cannot open: {e}"))),
            }
        }
    };
    // Where the open file really is, whatever links led to it: no race with a link swapped
    // in between a check and the open.
    let real = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()));
    match real {
        Ok(real) if roots.iter().any(|root| real.starts_with(root)) => {}
        Ok(real) => {
            return Err(refuse(&format!(
                "is {} really, outside RustAppSendfileRoot",
                real.display()
            )));
        }
        Err(e) => return Err(refuse(&format!("cannot be located: {e}"))),
    }
    request
        .send_file(file, status)
        .map_err(HttpStatus::from_apache)
}
