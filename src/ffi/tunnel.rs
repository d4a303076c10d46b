//! A client connection switched to another protocol (a 101 answer): what the tunnel relay
//! reads from and writes to. All of it goes through the connection's filters, never the raw
//! socket, so TLS, HTTP/2 streams and bytes Apache already buffered work alike.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use super::request::Request;
use super::sys;

/// The client side of a switched connection, for the rest of the handler.
pub(crate) struct ClientTunnel<'r> {
    request: Request<'r>,
    input: *mut sys::apr_bucket_brigade,
    output: *mut sys::apr_bucket_brigade,
    poll_fd: RawFd,
    /// An HTTP/2 stream, signalled through mod_http2's pipe rather than a socket.
    shared: bool,
}

/// What a read from the client found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ClientRead {
    Data(usize),
    /// Nothing now: wait for [`ClientTunnel::poll_fd`].
    Nothing,
    /// The client closed its side, or the connection failed.
    Closed,
}

/// The client went away.
#[derive(Debug)]
pub(crate) struct ClientGone;

impl<'r> ClientTunnel<'r> {
    /// Sends `101 Switching Protocols` with `Upgrade: protocol` (and the response headers set
    /// so far), and takes HTTP off the connection. `None` when Apache gives no descriptor to
    /// wait on (the 101 may have gone out: the connection is then closed).
    pub(crate) fn open(request: Request<'r>, protocol: &[u8]) -> Option<ClientTunnel<'r>> {
        let r = request.rec_mut();
        let mut shared = 0;
        // SAFETY: a live request on its handler's thread; the shim copies `protocol` and
        // writes one int.
        let poll_fd = unsafe {
            sys::rustapp_shim_tunnel_open(r, protocol.as_ptr().cast(), protocol.len(), &mut shared)
        };
        if poll_fd < 0 {
            return None;
        }
        // SAFETY: brigades in the request pool, which outlives the tunnel.
        let (input, output) = unsafe {
            (
                sys::rustapp_shim_brigade_create(r),
                sys::rustapp_shim_brigade_create(r),
            )
        };
        Some(ClientTunnel {
            request,
            input,
            output,
            poll_fd,
            shared: shared != 0,
        })
    }

    /// The descriptor that becomes readable when the client may have sent more.
    pub(crate) fn poll_fd(&self) -> RawFd {
        self.poll_fd
    }

    /// Whether the client is an HTTP/2 stream, whose descriptor is mod_http2's pipe: a hint
    /// that input may have come, not a socket's readiness.
    pub(crate) fn is_stream(&self) -> bool {
        self.shared
    }

    /// Reads what the client sent, without waiting.
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> ClientRead {
        // SAFETY: a live request and brigade; `buf` is writable for its length.
        let n = unsafe {
            sys::rustapp_shim_tunnel_read(
                self.request.rec_mut(),
                self.input,
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        match n {
            0 => ClientRead::Nothing,
            n if n > 0 => ClientRead::Data(n as usize),
            _ => ClientRead::Closed,
        }
    }

    /// Writes `data` to the client and flushes it (waiting up to Apache's `Timeout`).
    pub(crate) fn write(&mut self, data: &[u8]) -> Result<(), ClientGone> {
        // SAFETY: a live request and brigade; `data` is readable for its length and the
        // shim's flush writes (or copies) it before returning.
        let status = unsafe {
            sys::rustapp_shim_tunnel_write(
                self.request.rec_mut(),
                self.output,
                data.as_ptr().cast(),
                data.len(),
            )
        };
        if status == 0 { Ok(()) } else { Err(ClientGone) }
    }
}

impl Request<'_> {
    /// The virtual host's `Timeout`.
    pub(crate) fn server_timeout(self) -> Duration {
        // SAFETY: reads the request's server record.
        let micros = unsafe { sys::rustapp_shim_server_timeout(self.rec_mut()) };
        Duration::from_micros(u64::try_from(micros).unwrap_or(0))
    }
}

/// Writes what `peer` takes now of `data`: never a SIGPIPE for all of Apache when the peer
/// has closed (an error instead).
pub(crate) fn send_to_peer(peer: &UnixStream, data: &[u8]) -> io::Result<usize> {
    // SAFETY: `data` is readable for its length; the descriptor is the stream's.
    let sent = unsafe {
        libc::send(
            peer.as_raw_fd(),
            data.as_ptr().cast(),
            data.len(),
            libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
        )
    };
    usize::try_from(sent).map_err(|_| io::Error::last_os_error())
}
