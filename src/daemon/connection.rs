//! One connection between an Apache child and a daemon: frames in, frames out.

use std::io::{self, IoSlice, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use rustapp_daemon_protocol::{
    Decoder, Frame, HEADER_LEN, Limits, body_frame_parts, encode, response_body_header,
};

use std::os::fd::{BorrowedFd, OwnedFd};

use super::os::{recv_into_spare, recv_with_fds, send_now, send_with_fd, writable_within};

/// Body pieces up to this size are copied into the outgoing buffer; larger ones are written
/// straight from where they are.
const SMALL_BODY_PIECE: usize = 64 * 1024;

/// Bytes a read through the thread's scratch buffer takes at most.
const SCRATCH_LEN: usize = 64 * 1024;

thread_local! {
    /// What reads land in before the decoder takes them: one per thread, not per connection
    /// (a daemon may hold thousands of connections that wait).
    static SCRATCH: std::cell::RefCell<Box<[u8]>> =
        std::cell::RefCell::new(vec![0u8; SCRATCH_LEN].into_boxed_slice());
}

pub(crate) struct Connection {
    pub(crate) stream: UnixStream,
    decoder: Decoder,
    /// Small frames being encoded together.
    out: BytesMut,
    /// Output waiting for the socket, in order: encoded frames, and large body pieces by
    /// reference.
    pending: std::collections::VecDeque<bytes::Bytes>,
    pending_len: usize,
    /// Whether the peer has proven it is this Apache (`Hello` checked).
    pub(crate) greeted: bool,
    /// In a daemon: the id its workers watch it under while it waits for a request (it stays
    /// in their event set, disarmed, between waits).
    pub(crate) watched_as: Option<u64>,
    /// On the Apache child's side: the daemon process at the other end (from `Welcome`).
    pub(crate) peer_pid: Option<u32>,
    /// A descriptor the peer attached to what it sent (`Switched` carries one).
    received: Vec<OwnedFd>,
    /// Whether a large frame made the read buffer grow (it is given back after the body).
    grown: bool,
}

impl Connection {
    pub(crate) fn new(stream: UnixStream, limits: Limits) -> Connection {
        Connection {
            stream,
            decoder: Decoder::new(limits),
            // Grows with use: thousands of connections may wait with nothing queued.
            out: BytesMut::new(),
            pending: std::collections::VecDeque::new(),
            pending_len: 0,
            greeted: false,
            watched_as: None,
            peer_pid: None,
            received: Vec::new(),
            grown: false,
        }
    }

    /// The next frame, or `None` when the peer closed the connection between frames.
    pub(crate) fn read_frame(&mut self) -> io::Result<Option<Frame>> {
        loop {
            match self.decoder.next_frame() {
                Ok(Some(frame)) => {
                    // Large body pieces grew the buffer: it serves each next piece (taken back
                    // whole once the last one was let go), and is given back after the body.
                    let in_body = matches!(frame, Frame::ResponseBody(_) | Frame::RequestBody(_));
                    let buffer = self.decoder.buffer();
                    if !in_body
                        && buffer.is_empty()
                        && (self.grown || buffer.capacity() > KEPT_CAPACITY)
                    {
                        *buffer = BytesMut::new();
                        self.grown = false;
                    }
                    return Ok(Some(frame));
                }
                Ok(None) => {}
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            }
            let n = self.receive()?;
            // One descriptor comes with `Switched`; a peer sending more gets them closed.
            if self.received.len() > 1 {
                self.received.drain(..self.received.len() - 1);
            }
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

    /// Reads what the peer sent into the decoder: small frames through the thread's scratch
    /// buffer, the rest of a large one (a body piece) straight into the decoder's buffer, in
    /// one system call and without a second copy.
    fn receive(&mut self) -> io::Result<usize> {
        let missing = self.decoder.missing();
        if missing > SCRATCH_LEN {
            self.grown = true;
            return recv_into_spare(&self.stream, self.decoder.buffer(), missing);
        }
        SCRATCH.with_borrow_mut(|scratch| {
            let n = recv_with_fds(&self.stream, scratch, &mut self.received)?;
            self.decoder.extend(&scratch[..n]);
            Ok(n)
        })
    }

    /// The descriptor the peer attached to what was read last (`Switched` carries one).
    pub(crate) fn take_received_fd(&mut self) -> Option<OwnedFd> {
        self.received.pop()
    }

    /// Sends `frame` with descriptor `fd` attached, after everything queued before it.
    pub(crate) fn send_with_fd(&mut self, frame: &Frame, fd: BorrowedFd<'_>) -> io::Result<()> {
        self.flush()?;
        let mut encoded = BytesMut::new();
        encode(frame, &mut encoded);
        send_with_fd(&self.stream, &encoded, fd)
    }

    /// Whether a whole or partial frame is already buffered (so the peer will not signal it).
    pub(crate) fn has_buffered_input(&mut self) -> bool {
        !self.decoder.buffer().is_empty()
    }

    /// Whether a whole frame is buffered: `read_frame` returns it without reading.
    pub(crate) fn has_buffered_frame(&self) -> bool {
        self.decoder.has_frame()
    }

    /// Sends a frame encoded already, after everything queued before it.
    pub(crate) fn send_encoded(&mut self, frame: &[u8]) -> io::Result<()> {
        self.flush()?;
        (&self.stream).write_all(frame)
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
                return self.write_after_queue(&header, data);
            }
        }
        encode(frame, &mut self.out);
        self.flush_when_large()
    }

    /// As `queue` with `Frame::ResponseBody`, for a piece of body borrowed from the
    /// application: never copied twice, and a large one not at all.
    pub(crate) fn queue_response_body(&mut self, data: &[u8]) -> io::Result<()> {
        let header = response_body_header(data.len());
        if data.len() > SMALL_BODY_PIECE {
            return self.write_after_queue(&header, data);
        }
        self.out.extend_from_slice(&header);
        self.out.extend_from_slice(data);
        self.flush_when_large()
    }

    fn flush_when_large(&mut self) -> io::Result<()> {
        if self.out.len() > SMALL_BODY_PIECE {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes what is queued, then a body frame's header and payload from where they are.
    fn write_after_queue(&mut self, header: &[u8], data: &[u8]) -> io::Result<()> {
        self.flush()?;
        let mut parts = [IoSlice::new(header), IoSlice::new(data)];
        let mut parts = &mut parts[..];
        while !parts.is_empty() {
            let n = self.stream.write_vectored(parts)?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            IoSlice::advance_slices(&mut parts, n);
        }
        Ok(())
    }

    /// Bytes queued and not yet written.
    pub(crate) fn queued(&self) -> usize {
        self.out.len() + self.pending_len
    }

    /// Queues `frame` for [`Connection::flush_without_blocking`]. Small frames are encoded
    /// together; a large body piece is queued by reference, never copied.
    pub(crate) fn queue_without_blocking(&mut self, frame: &Frame) {
        if let Some((header, data)) = body_frame_parts(frame) {
            if data.len() > SMALL_BODY_PIECE {
                self.out.extend_from_slice(&header);
                self.queue_by_reference(data.clone());
                return;
            }
        }
        encode(frame, &mut self.out);
    }

    /// As `queue_without_blocking` with `Frame::ResponseBody`, for a piece of body borrowed
    /// from the application (valid for this call only). A large piece that nothing waits
    /// before is written from where it is, as far as the socket takes it within `patience`:
    /// only what it did not take is copied.
    pub(crate) fn queue_response_body_without_blocking(
        &mut self,
        data: &[u8],
        patience: Duration,
    ) -> io::Result<()> {
        let header = response_body_header(data.len());
        if data.len() <= SMALL_BODY_PIECE {
            self.out.extend_from_slice(&header);
            self.out.extend_from_slice(data);
            return Ok(());
        }
        let (mut header_sent, mut data_sent) = (0, 0);
        // Written now only when nothing queued by reference waits before it.
        while self.pending.is_empty() && data_sent < data.len() {
            let parts = [
                IoSlice::new(&self.out),
                IoSlice::new(&header[header_sent..]),
                IoSlice::new(&data[data_sent..]),
            ];
            let mut n = match send_now(&self.stream, &parts) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
                Err(e) => return Err(e),
            };
            let from_out = n.min(self.out.len());
            self.out.advance(from_out);
            n -= from_out;
            let from_header = n.min(HEADER_LEN - header_sent);
            header_sent += from_header;
            data_sent += n - from_header;
            if data_sent < data.len() && !writable_within(self.stream.as_raw_fd(), patience) {
                break;
            }
        }
        self.out.extend_from_slice(&header[header_sent..]);
        let rest = &data[data_sent..];
        if !rest.is_empty() {
            self.queue_by_reference(Bytes::copy_from_slice(rest));
        }
        Ok(())
    }

    /// Queues `data` after what is encoded so far, without copying it into `out`.
    fn queue_by_reference(&mut self, data: Bytes) {
        self.stage();
        self.pending_len += data.len();
        self.pending.push_back(data);
    }

    /// Moves what is encoded in `out` to the end of the pending queue.
    fn stage(&mut self) {
        if !self.out.is_empty() {
            let staged = self.out.split().freeze();
            self.pending_len += staged.len();
            self.pending.push_back(staged);
        }
    }

    /// Marks `n` bytes from the front of the pending queue as written.
    fn advance_pending(&mut self, mut n: usize) {
        self.pending_len -= n;
        while n > 0 {
            let front = self.pending.front_mut().expect("written bytes were queued");
            if n < front.len() {
                front.advance(n);
                return;
            }
            n -= front.len();
            self.pending.pop_front();
        }
    }

    /// Writes as much of the queue as the socket takes now: whether all of it went.
    pub(crate) fn flush_without_blocking(&mut self) -> io::Result<bool> {
        // Most responses are a few small frames: written from where they were encoded.
        while self.pending.is_empty() && !self.out.is_empty() {
            match send_now(&self.stream, &[IoSlice::new(&self.out)]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.out.advance(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        self.stage();
        while !self.pending.is_empty() {
            let mut parts = [IoSlice::new(&[]); MAX_PARTS];
            let count = self.fill_parts(&mut parts);
            match send_now(&self.stream, &parts[..count]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.advance_pending(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        self.release_buffer();
        Ok(true)
    }

    /// Writes what is queued.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        if self.pending.is_empty() && !self.out.is_empty() {
            let written = (&self.stream).write_all(&self.out);
            self.out.clear();
            written?;
        }
        self.stage();
        while !self.pending.is_empty() {
            let mut parts = [IoSlice::new(&[]); MAX_PARTS];
            let count = self.fill_parts(&mut parts);
            let n = (&self.stream).write_vectored(&parts[..count])?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            self.advance_pending(n);
        }
        self.release_buffer();
        Ok(())
    }

    /// Points `parts` at the front of the pending queue: how many it filled.
    fn fill_parts<'a>(&'a self, parts: &mut [IoSlice<'a>]) -> usize {
        let mut count = 0;
        for (part, piece) in parts.iter_mut().zip(&self.pending) {
            *part = IoSlice::new(piece);
            count += 1;
        }
        count
    }

    /// Lets go of an output buffer a large response grew, once it is empty.
    fn release_buffer(&mut self) {
        if self.out.capacity() > KEPT_CAPACITY {
            self.out = BytesMut::new();
        }
    }
}

/// Pieces written in one system call at most (on the stack: no allocation per write).
const MAX_PARTS: usize = 16;

/// Buffer capacity a connection keeps between responses; more is given back.
const KEPT_CAPACITY: usize = 256 * 1024;
