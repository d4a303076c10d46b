//! A switched connection (a 101 answer), relayed on this Apache thread between the client and
//! whoever took it over: an embedded application's socket, or the connection to a daemon.
//! Bytes go both ways as they come, through the client connection's filters (so TLS and
//! HTTP/2 streams work), until either side closes, nothing moves for the idle limit, or
//! Apache stops.

use std::fmt::Display;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::ffi::{ClientRead, ClientTunnel, Request, is_stopping};

/// Bytes moved per read, each way.
const CHUNK: usize = 64 * 1024;

/// How often a quiet tunnel looks at Apache stopping.
const LOOK_AROUND: Duration = Duration::from_secs(1);

/// Tunnels open in this process.
static OPEN: AtomicUsize = AtomicUsize::new(0);

/// One of this Apache child's tunnels, held from before the application is asked until the
/// tunnel closes: each holds a thread for its whole life, so their number is capped below
/// the child's threads.
pub(crate) struct TunnelSlot(());

impl TunnelSlot {
    /// A slot, unless `limit` tunnels are open already.
    pub(crate) fn reserve(limit: usize) -> Option<TunnelSlot> {
        OPEN.fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
            (open < limit).then_some(open + 1)
        })
        .ok()
        .map(|_| TunnelSlot(()))
    }

    /// Tunnels open in this process now.
    pub(crate) fn open() -> usize {
        OPEN.load(Ordering::Acquire)
    }
}

impl Drop for TunnelSlot {
    fn drop(&mut self) {
        OPEN.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Why a tunnel ended.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    /// The application (or daemon) closed its side.
    PeerClosed,
    PeerFailed(io::ErrorKind),
    /// The client closed or went away.
    ClientGone,
    Idle(Duration),
    Stopping,
}

/// Switches the connection to `protocol`, then relays between the client and `peer` until
/// the tunnel ends: `early` (what the peer sent before the relay began) reaches the client
/// first. `idle` bounds how long nothing may move either way; `None`: Apache's `Timeout`.
pub(crate) fn relay(
    request: Request<'_>,
    who: &dyn Display,
    protocol: &[u8],
    peer: BorrowedFd<'_>,
    early: &[u8],
    idle: Option<Duration>,
) {
    let Some(mut client) = ClientTunnel::open(request, protocol) else {
        log::error!("{who}: Apache gave no way to wait on the switched connection; it is closed");
        return;
    };
    if let Err(e) = crate::host::set_nonblocking(&peer) {
        log::error!("{who}: cannot relay the switched connection: {e}");
        return;
    }
    let idle = idle.unwrap_or_else(|| request.server_timeout());
    let ended = if !early.is_empty() && client.write(early).is_err() {
        Ended::ClientGone
    } else {
        pump(&mut client, peer.as_raw_fd(), idle)
    };
    match ended {
        Ended::PeerClosed | Ended::ClientGone => {
            log::debug!("{who}: the switched connection closed ({ended:?})");
        }
        Ended::PeerFailed(kind) => {
            log::info!("{who}: the switched connection broke on the application's side: {kind}");
        }
        Ended::Idle(limit) => log::info!(
            "{who}: nothing moved on the switched connection for {} s (stream-idle-timeout, else Timeout); it was closed",
            limit.as_secs()
        ),
        Ended::Stopping => log::info!(
            "{who}: this Apache process is stopping, so the switched connection was closed (a client can reconnect)"
        ),
    }
}

/// Moves bytes both ways until the tunnel ends. A side is read or written while it is known
/// to be ready (from the start, and after `poll` says so) and until a read or write finds it
/// is not, so a message costs little more than a read, a write and a wait each way.
fn pump(client: &mut ClientTunnel<'_>, peer: RawFd, idle: Duration) -> Ended {
    let mut from_client = vec![0u8; CHUNK];
    let mut from_peer = vec![0u8; CHUNK];
    // Client bytes read but not yet taken by the peer.
    let mut unsent = 0..0;
    let mut client_done = false;
    let mut ready = Ready {
        client: true,
        peer_readable: true,
        peer_writable: true,
    };
    let mut last_moved = Instant::now();
    loop {
        if is_stopping() {
            return Ended::Stopping;
        }
        let mut moved = false;
        if ready.client && unsent.is_empty() && !client_done {
            match client.read(&mut from_client) {
                ClientRead::Data(n) => {
                    unsent = 0..n;
                    moved = true;
                }
                ClientRead::Nothing => ready.client = false,
                ClientRead::Closed => {
                    // The peer reads its end; what it still sends reaches the client.
                    client_done = true;
                    moved = true;
                    // SAFETY: shutdown on a descriptor the caller holds.
                    unsafe { libc::shutdown(peer, libc::SHUT_WR) };
                }
            }
        }
        if ready.peer_writable && !unsent.is_empty() {
            match write_some(peer, &from_client[unsent.clone()]) {
                Ok(n) => {
                    unsent.start += n;
                    moved = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => ready.peer_writable = false,
                Err(e) => return Ended::PeerFailed(e.kind()),
            }
        }
        if ready.peer_readable {
            match read_some(peer, &mut from_peer) {
                Ok(0) => return Ended::PeerClosed,
                Ok(n) => {
                    if client.write(&from_peer[..n]).is_err() {
                        return Ended::ClientGone;
                    }
                    // A short read took all there was.
                    ready.peer_readable = n == from_peer.len();
                    moved = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => ready.peer_readable = false,
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ended::PeerClosed,
                Err(e) => return Ended::PeerFailed(e.kind()),
            }
        }
        if moved {
            last_moved = Instant::now();
            continue;
        }
        let left = idle.saturating_sub(last_moved.elapsed());
        if left.is_zero() {
            return Ended::Idle(idle);
        }
        let watch_client = unsent.is_empty() && !client_done;
        let recheck = client.recheck_every();
        let tick = left.min(recheck.unwrap_or(LOOK_AROUND));
        // What `poll` finds adds to what is known: a side stays ready until a read or write
        // finds it is not (the client's filters may hold bytes its socket no longer shows).
        let woke = wait(
            client.poll_fd(),
            watch_client,
            peer,
            !unsent.is_empty(),
            tick,
        );
        // An HTTP/2 stream is read again after each quiet tick, whatever its pipe said.
        ready.client |= woke.client || (recheck.is_some() && woke.nothing());
        ready.peer_readable |= woke.peer_readable;
        ready.peer_writable |= woke.peer_writable;
    }
}

/// Which sides `poll` found ready.
struct Ready {
    client: bool,
    peer_readable: bool,
    peer_writable: bool,
}

impl Ready {
    fn nothing(&self) -> bool {
        !(self.client || self.peer_readable || self.peer_writable)
    }
}

/// Waits until the client may have sent more (if `watch_client`), the peer sent something or
/// (if `peer_writable`) can take more, or `limit` passes.
fn wait(
    client: RawFd,
    watch_client: bool,
    peer: RawFd,
    peer_writable: bool,
    limit: Duration,
) -> Ready {
    let mut fds = [
        libc::pollfd {
            fd: if watch_client { client } else { -1 },
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: peer,
            events: libc::POLLIN | if peer_writable { libc::POLLOUT } else { 0 },
            revents: 0,
        },
    ];
    let millis = i32::try_from(limit.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: two pollfds in a live array; a negative descriptor is ignored.
    let woke = unsafe { libc::poll(fds.as_mut_ptr(), 2, millis) };
    if woke <= 0 {
        // Timed out, or interrupted: nothing to do but look again.
        return Ready {
            client: false,
            peer_readable: false,
            peer_writable: false,
        };
    }
    // A hang-up or error shows as readable: the read finds out which.
    let gone = libc::POLLHUP | libc::POLLERR;
    Ready {
        client: fds[0].revents & (libc::POLLIN | gone) != 0,
        peer_readable: fds[1].revents & (libc::POLLIN | gone) != 0,
        peer_writable: fds[1].revents & (libc::POLLOUT | gone) != 0,
    }
}

fn read_some(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is writable for its length.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

fn write_some(fd: RawFd, data: &[u8]) -> io::Result<usize> {
    // SAFETY: `data` is readable for its length. MSG_NOSIGNAL: a closed peer is an error
    // here, not a SIGPIPE for all of Apache.
    let n = unsafe { libc::send(fd, data.as_ptr().cast(), data.len(), libc::MSG_NOSIGNAL) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}
