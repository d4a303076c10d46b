//! A switched connection (a 101 answer), relayed on this Apache thread between the client and
//! whoever took it over: an embedded application's socket, or the connection to a daemon.
//! Bytes go both ways as they come, through the client connection's filters (so TLS and
//! HTTP/2 streams work), until either side closes, nothing moves for the idle limit, or
//! Apache stops.

use std::fmt::Display;
use std::io::{self, Read};
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::ticks::{LOOK_AROUND, PROBE_H2};
use crate::ffi::{
    ClientRead, ClientTunnel, Request, TunnelReady, is_stopping, send_to_peer, wait_tunnel,
};

/// Bytes moved per read, each way.
const CHUNK: usize = 64 * 1024;

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
/// the tunnel ends. `idle` bounds how long nothing may move either way; `None`: Apache's
/// `Timeout`.
pub(crate) fn relay(
    request: Request<'_>,
    who: &dyn Display,
    protocol: &[u8],
    peer: &UnixStream,
    idle: Option<Duration>,
) {
    let Some(mut client) = ClientTunnel::open(request, protocol) else {
        log::error!("{who}: Apache gave no way to wait on the switched connection; it is closed");
        return;
    };
    if let Err(e) = peer.set_nonblocking(true) {
        log::error!("{who}: cannot relay the switched connection: {e}");
        return;
    }
    let idle = idle.unwrap_or_else(|| request.server_timeout());
    let ended = pump(&mut client, peer, idle);
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
/// to be ready (from the start, and after a wait says so) and until a read or write finds it
/// is not, so a message costs little more than a read, a write and a wait each way.
fn pump(client: &mut ClientTunnel<'_>, mut peer: &UnixStream, idle: Duration) -> Ended {
    let mut from_client = vec![0u8; CHUNK];
    let mut from_peer = vec![0u8; CHUNK];
    // Client bytes read but not yet taken by the peer.
    let mut unsent = 0..0;
    let mut client_done = false;
    let mut ready = TunnelReady {
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
                    let _ = peer.shutdown(Shutdown::Write);
                }
            }
        }
        if ready.peer_writable && !unsent.is_empty() {
            match send_to_peer(peer, &from_client[unsent.clone()]) {
                Ok(n) => {
                    unsent.start += n;
                    moved = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => ready.peer_writable = false,
                Err(e) => return Ended::PeerFailed(e.kind()),
            }
        }
        if ready.peer_readable {
            match peer.read(&mut from_peer) {
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
        let watch_client = (unsent.is_empty() && !client_done).then(|| client.poll_fd());
        // An HTTP/2 stream's pipe is only a hint: such a stream is also read after each
        // quiet tick, as a response that waits probes it.
        let tick = if client.is_stream() {
            PROBE_H2
        } else {
            LOOK_AROUND
        };
        let woke = wait_tunnel(
            watch_client,
            peer.as_raw_fd(),
            !unsent.is_empty(),
            left.min(tick),
        );
        // What a wait finds adds to what is known: a side stays ready until a read or write
        // finds it is not (the client's filters may hold bytes its socket no longer shows).
        ready.client |= woke.client || (client.is_stream() && woke.nothing());
        ready.peer_readable |= woke.peer_readable;
        ready.peer_writable |= woke.peer_writable;
    }
}
