//! One connection between an Apache child and a daemon: frames in, frames out.

use std::io::{self, IoSlice, Read, Write};
use std::os::unix::net::UnixStream;

use bytes::{Buf, BytesMut};
use rustapp_daemon_protocol::{Decoder, Frame, Limits, body_frame_parts, encode};

use super::os::send_now;

/// Body pieces up to this size are copied into the outgoing buffer; larger ones are written
/// straight from where they are.
const SMALL_BODY_PIECE: usize = 64 * 1024;

thread_local! {
    /// What reads land in before the decoder takes them: one per thread, not per connection
    /// (a daemon may hold thousands of connections that wait).
    static SCRATCH: std::cell::RefCell<Box<[u8]>> =
        std::cell::RefCell::new(vec![0u8; 64 * 1024].into_boxed_slice());
}

pub(crate) struct Connection {
    pub(crate) stream: UnixStream,
    decoder: Decoder,
    out: BytesMut,
    /// Whether the peer has proven it is this Apache (`Hello` checked).
    pub(crate) greeted: bool,
    /// When the daemon's poller found something to read on it (for `queue-timeout`).
    pub(crate) ready_at: Option<std::time::Instant>,
    /// On the Apache child's side: the daemon process at the other end (from `Welcome`).
    pub(crate) peer_pid: Option<u32>,
}

impl Connection {
    pub(crate) fn new(stream: UnixStream, limits: Limits) -> Connection {
        Connection {
            stream,
            decoder: Decoder::new(limits),
            // Grows with use: thousands of connections may wait with nothing queued.
            out: BytesMut::new(),
            greeted: false,
            ready_at: None,
            peer_pid: None,
        }
    }

    /// The next frame, or `None` when the peer closed the connection between frames.
    pub(crate) fn read_frame(&mut self) -> io::Result<Option<Frame>> {
        loop {
            match self.decoder.next_frame() {
                Ok(Some(frame)) => return Ok(Some(frame)),
                Ok(None) => {}
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            }
            let n = SCRATCH.with_borrow_mut(|scratch| {
                let n = self.stream.read(scratch)?;
                self.decoder.extend(&scratch[..n]);
                Ok::<_, io::Error>(n)
            })?;
            if n == 0 {
                return if self.decoder.buffer().is_empty() {
                    Ok(None)
                } else {
                    Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the peer closed inside a frame",
                    ))
                };
            }
        }
    }

    /// Whether a whole or partial frame is already buffered (so the peer will not signal it).
    pub(crate) fn has_buffered_input(&mut self) -> bool {
        !self.decoder.buffer().is_empty()
    }

    /// Whether a whole frame is buffered: `read_frame` returns it without reading.
    pub(crate) fn has_buffered_frame(&self) -> bool {
        self.decoder.has_frame()
    }

    /// Sends `frame` and everything queued before it.
    pub(crate) fn send(&mut self, frame: &Frame) -> io::Result<()> {
        self.queue(frame)?;
        self.flush()
    }

    /// Adds `frame` to what goes out at the next `flush`, so that a small response (head,
    /// body, end) costs one write. Large body pieces are written at once, without a copy.
    pub(crate) fn queue(&mut self, frame: &Frame) -> io::Result<()> {
        if let Some((header, data)) = body_frame_parts(frame) {
            if data.len() > SMALL_BODY_PIECE {
                self.flush()?;
                let mut parts = [IoSlice::new(&header), IoSlice::new(data)];
                let mut parts = &mut parts[..];
                while !parts.is_empty() {
                    let n = self.stream.write_vectored(parts)?;
                    if n == 0 {
                        return Err(io::ErrorKind::WriteZero.into());
                    }
                    IoSlice::advance_slices(&mut parts, n);
                }
                return Ok(());
            }
        }
        encode(frame, &mut self.out);
        if self.out.len() > SMALL_BODY_PIECE {
            self.flush()?;
        }
        Ok(())
    }

    /// Bytes queued and not yet written.
    pub(crate) fn queued(&self) -> usize {
        self.out.len()
    }

    /// Queues `frame` for [`Connection::flush_without_blocking`]. A large body piece goes
    /// straight to the socket when nothing is queued before it, as far as the socket takes it
    /// now; only the rest is copied.
    pub(crate) fn queue_without_blocking(&mut self, frame: &Frame) -> io::Result<()> {
        if let Some((header, data)) = body_frame_parts(frame) {
            if data.len() > SMALL_BODY_PIECE && self.out.is_empty() {
                let sent = match send_now(&self.stream, &[&header, data]) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
                    Err(e) => return Err(e),
                };
                if sent < header.len() {
                    self.out.extend_from_slice(&header[sent..]);
                    self.out.extend_from_slice(data);
                } else {
                    self.out.extend_from_slice(&data[sent - header.len()..]);
                }
                return Ok(());
            }
        }
        encode(frame, &mut self.out);
        Ok(())
    }

    /// Writes as much of the queue as the socket takes now: whether all of it went.
    pub(crate) fn flush_without_blocking(&mut self) -> io::Result<bool> {
        while !self.out.is_empty() {
            match send_now(&self.stream, &[&self.out]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.out.advance(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Writes what is queued.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let written = self.stream.write_all(&self.out);
        self.out.clear();
        written
    }
}
