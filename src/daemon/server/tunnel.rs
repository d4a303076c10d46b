//! A switched connection in a daemon: after a 101 and `Switched`, bytes move between the Apache
//! child's connection and the application's end of the socket pair it took over. Tunnels wait
//! on the event loop, never on a worker: a daemon relays thousands of idle WebSockets with
//! its few threads. Each side's end of file is passed on as a half-close; the tunnel is over
//! when both sides have ended (or either fails).

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use crate::daemon::connection::Connection;

/// Bytes buffered per direction: what one slow reader holds up, at most.
const CHUNK: usize = 64 * 1024;

/// One direction's bytes read but not yet written.
#[derive(Default)]
struct Pending {
    buf: Vec<u8>,
    start: usize,
    /// The reading side has ended (its end of file was passed on once this is empty).
    ended: bool,
    /// The end of file was passed on.
    shut: bool,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.start == self.buf.len()
    }
}

pub(super) struct Tunnel {
    child: UnixStream,
    app: UnixStream,
    to_app: Pending,
    to_child: Pending,
}

/// Where a tunnel stands after a pump.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Relayed {
    Open,
    Closed,
}

impl Tunnel {
    /// A tunnel between the Apache child's connection (past `Switched`) and `app_end`, the
    /// daemon's end of the socket pair. Bytes the child sent after the switch that were read
    /// already go to the application first.
    pub(super) fn new(conn: Connection, app_end: OwnedFd) -> io::Result<Tunnel> {
        let (child, early) = conn.into_raw_parts();
        child.set_nonblocking(true)?;
        let app = UnixStream::from(app_end);
        app.set_nonblocking(true)?;
        Ok(Tunnel {
            child,
            app,
            to_app: Pending {
                buf: early.to_vec(),
                ..Pending::default()
            },
            to_child: Pending::default(),
        })
    }

    pub(super) fn child_fd(&self) -> RawFd {
        self.child.as_raw_fd()
    }

    pub(super) fn app_fd(&self) -> RawFd {
        self.app.as_raw_fd()
    }

    /// Moves what can be moved both ways without waiting.
    pub(super) fn pump(&mut self) -> Relayed {
        loop {
            let moved_in = match relay(&mut self.child, &mut self.app, &mut self.to_app) {
                Ok(moved) => moved,
                Err(_) => return Relayed::Closed,
            };
            let moved_out = match relay(&mut self.app, &mut self.child, &mut self.to_child) {
                Ok(moved) => moved,
                Err(_) => return Relayed::Closed,
            };
            if self.to_app.shut && self.to_child.shut {
                return Relayed::Closed;
            }
            if !moved_in && !moved_out {
                return Relayed::Open;
            }
        }
    }
}

/// One direction, `from` → `to`: reads while there is room, writes what it has, and passes
/// `from`'s end of file on. Whether anything moved.
fn relay(from: &mut UnixStream, to: &mut UnixStream, pending: &mut Pending) -> io::Result<bool> {
    let mut moved = false;
    if pending.is_empty() && !pending.ended {
        pending.buf.resize(CHUNK, 0);
        pending.start = 0;
        match from.read(&mut pending.buf) {
            Ok(0) => {
                pending.buf.clear();
                pending.ended = true;
                moved = true;
            }
            Ok(n) => {
                pending.buf.truncate(n);
                moved = true;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => pending.buf.clear(),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                pending.buf.clear();
                pending.ended = true;
                moved = true;
            }
            Err(e) => return Err(e),
        }
    }
    while !pending.is_empty() {
        match to.write(&pending.buf[pending.start..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                pending.start += n;
                moved = true;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    if pending.ended && pending.is_empty() && !pending.shut {
        pending.shut = true;
        let _ = to.shutdown(std::net::Shutdown::Write);
        moved = true;
    }
    // A buffer that grew for one burst is not kept by a connection that idles.
    if pending.is_empty() && pending.buf.capacity() > CHUNK {
        pending.buf = Vec::new();
    }
    Ok(moved)
}
