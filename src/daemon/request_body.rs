//! In an Apache child: a daemon's application's request body, answered from what the child
//! read ahead (`spool`) or from the client as the application reads, without ever waiting for
//! the client (a bidirectional stream's client may send only after it saw an answer); the
//! client's trailers follow its body.

use std::cell::RefCell;
use std::io;
use std::os::fd::AsFd;

use bytes::Bytes;
use rustapp_daemon_protocol::Frame;

use super::connection::Connection;
use super::spool::Spool;
use crate::ffi::{HttpStatus, ReadNow};
use crate::host::Exchange;

/// Largest piece of request body sent per `ReadBody`.
const BODY_PIECE: usize = 256 * 1024;

/// Up to how large a body that is all here goes with the head, unasked.
const INLINE_BODY: usize = 64 * 1024;

/// Where the daemon's body reads are answered from.
pub(super) enum BodyFeed<'e, 'r> {
    /// Read from the client as the application reads.
    Client(&'e Exchange<'r>),
    /// Read beforehand (the rest, if the body was larger than the limit, from the client).
    Spooled(RefCell<Spool>, &'e Exchange<'r>),
}

impl<'e, 'r> BodyFeed<'e, 'r> {
    /// Where the daemon's body reads for `exchange` are answered from, and its whole body
    /// when that is small and all here, to go with the head (`body_follows`). `Err` is the
    /// status to answer when reading ahead failed (413, 400, 500).
    ///
    /// `buffer_limit` (`RustAppBufferRequestBody`): up to how many bytes are read before the
    /// daemon is asked, so that a slow upload holds no daemon thread; the rest of a larger
    /// body streams as the application reads.
    pub(super) fn for_request(
        exchange: &'e Exchange<'r>,
        buffer_limit: u64,
    ) -> Result<(BodyFeed<'e, 'r>, Option<Vec<u8>>), HttpStatus> {
        let declared_too_large =
            u64::try_from(exchange.content_length()).is_ok_and(|length| length > buffer_limit);
        // An HTTP/2 WebSocket's "body" is the stream it runs over: never read ahead. A gRPC
        // call's is a stream of messages the client may send only as answers come: only what
        // has arrived is read ahead.
        let read_ahead =
            buffer_limit > 0 && exchange.has_body() && exchange.upgrade_offer().is_none();
        let mut spool = if read_ahead && exchange.is_grpc() {
            Spool::fill_now(exchange, buffer_limit.min(INLINE_BODY as u64))?
        } else if read_ahead && !declared_too_large {
            Spool::fill(exchange, buffer_limit)?
        } else {
            return Ok((BodyFeed::Client(exchange), None));
        };
        let inline = spool.take_whole(INLINE_BODY);
        Ok((BodyFeed::Spooled(RefCell::new(spool), exchange), inline))
    }

    /// What has arrived, without waiting for the client.
    fn read_now(&self, buf: &mut [u8]) -> ReadNow {
        match self {
            BodyFeed::Client(exchange) => exchange.read_body_now(buf),
            BodyFeed::Spooled(spool, exchange) => {
                let mut spool = spool.borrow_mut();
                match spool.read(buf) {
                    0 if !spool.is_complete() => exchange.read_body_now(buf),
                    n => ReadNow::Read(n),
                }
            }
        }
    }

    pub(super) fn exchange(&self) -> &Exchange<'r> {
        match self {
            BodyFeed::Client(exchange) | BodyFeed::Spooled(_, exchange) => exchange,
        }
    }

    /// The file a spooled body is in, for the daemon to read, once.
    fn hand_over(&self) -> Option<(std::fs::File, u64)> {
        match self {
            BodyFeed::Client(_) => None,
            BodyFeed::Spooled(spool, _) => spool.borrow_mut().hand_over(),
        }
    }

    fn failure_status(&self) -> Option<u16> {
        match self {
            BodyFeed::Client(exchange) | BodyFeed::Spooled(_, exchange) => {
                exchange.body_failure_status()
            }
        }
    }
}

/// The daemon's body reads, answered without ever waiting for the client: one the client has
/// sent nothing for yet is kept and answered once it has (it may send its next bytes only
/// after it saw more of the response, in a bidirectional stream).
#[derive(Default)]
pub(super) struct BodyReads {
    /// The read kept, of up to this many bytes.
    unanswered: Option<u32>,
}

impl BodyReads {
    /// The daemon asks for up to `max` more bytes: answered now, or kept.
    pub(super) fn asked(
        &mut self,
        conn: &mut Connection,
        feed: &BodyFeed<'_, '_>,
        max: u32,
    ) -> io::Result<()> {
        if !answer_body_read(conn, feed, max)? {
            self.unanswered = Some(max);
        }
        Ok(())
    }

    /// Answers the kept read if the client has sent something since.
    pub(super) fn answer_kept(
        &mut self,
        conn: &mut Connection,
        feed: &BodyFeed<'_, '_>,
    ) -> io::Result<()> {
        if let Some(max) = self.unanswered {
            if answer_body_read(conn, feed, max)? {
                self.unanswered = None;
            }
        }
        Ok(())
    }

    /// Whether a read waits for the client.
    pub(super) fn waiting(&self) -> bool {
        self.unanswered.is_some()
    }
}

/// Answers a wish for more request body: the spool's file, given to the daemon to read
/// itself, the first time there is one; else up to `max` bytes of what the client sent.
/// `Ok(false)`: nothing has arrived yet.
fn answer_body_read(conn: &mut Connection, feed: &BodyFeed<'_, '_>, max: u32) -> io::Result<bool> {
    if let Some((file, length)) = feed.hand_over() {
        return conn
            .send_with_fd(&Frame::RequestBodyFile { length }, file.as_fd())
            .map(|()| true);
    }
    thread_local! {
        /// Read into, then copied out at the size that came: a read that finds nothing yet
        /// (asked again each time the client may have sent more) costs no fresh buffer.
        static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0u8; BODY_PIECE]);
    }
    SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        let buf = &mut scratch[..(max as usize).clamp(1, BODY_PIECE)];
        match feed.read_now(buf) {
            ReadNow::NotYet => Ok(false),
            read => send_body_answer(conn, feed, buf, read).map(|()| true),
        }
    })
}

/// The frames answering one body read: bytes, or the end (after the client's trailers), or
/// the failure.
fn send_body_answer(
    conn: &mut Connection,
    feed: &BodyFeed<'_, '_>,
    buf: &[u8],
    read: ReadNow,
) -> io::Result<()> {
    let answer = match read {
        ReadNow::Read(0) => {
            if let Some(trailers) = request_trailers(feed.exchange()) {
                conn.queue(&trailers)?;
            }
            Frame::RequestBodyEnd
        }
        ReadNow::Read(n) => Frame::RequestBody(Bytes::copy_from_slice(&buf[..n])),
        ReadNow::NotYet | ReadNow::Failed => Frame::RequestBodyFailed {
            status: feed.failure_status().unwrap_or(400),
        },
    };
    conn.send(&answer)
}

/// The client's trailers, as the frame that carries them, if it sent any.
pub(super) fn request_trailers(exchange: &Exchange<'_>) -> Option<Frame> {
    let mut trailers = Vec::new();
    exchange.each_trailer(|name, value| {
        trailers.push((Bytes::copy_from_slice(name), Bytes::copy_from_slice(value)));
    });
    (!trailers.is_empty()).then_some(Frame::RequestTrailers(trailers))
}
