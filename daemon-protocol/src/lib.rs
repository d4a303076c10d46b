//! The protocol between an Apache child and a mod_rustapp daemon process, over the group's
//! UNIX socket. It carries what the embedded application ABI carries (a request head, a
//! response head, bodies streamed both ways, log lines) in compact binary frames.
//!
//! # Connections
//! An Apache child opens a connection to a daemon group and reuses it for many requests, one
//! at a time: no connection per request, and no HTTP parsing on either side. The first frame
//! on a connection is [`Frame::Hello`], which the daemon checks (with the peer's credentials)
//! before it reads anything else.
//!
//! # One request
//! ```text
//! child                                   daemon
//!   RequestHead  ------------------------>
//!                <------------------------  ReadBody{max}        (the app reads its body)
//!   RequestBody / RequestBodyEnd -------->                       (one answer per ReadBody)
//!   or RequestBodyFile{length} + fd ----->                       (a spooled body, once)
//!                <------------------------  Log{..}              (any time)
//!                <------------------------  ResponseHead         (or Failed)
//!                <------------------------  ResponseBody / Flush ...
//!                <------------------------  ResponseEnd          (or ResponseAbort)
//!   Cancel       ------------------------>                       (client went away)
//! ```
//! A request that offers an upgrade (WebSocket) comes as [`Frame::UpgradableRequest`]. If the
//! application takes the connection over, its answer is a 101 `ResponseHead` and then
//! [`Frame::Switched`], which carries (as an `SCM_RIGHTS` descriptor) a stream socket
//! connected to the application: the Apache child relays it to the client itself, and closes
//! this connection when the tunnel ends, which is how the daemon learns it did. These two
//! kinds are additions: an Apache child of the previous release never sends the first, so
//! never gets the second, and speaks to a newer daemon as before.
//!
//! A `ResponseHead` with an `X-Sendfile` header carries (as an `SCM_RIGHTS` descriptor) the
//! file it names, opened by the daemon; `ResponseEnd` follows, with no body, and the Apache
//! child sends the file itself.
//!
//! A body the Apache child read whole before asking (spooled in a temporary file) answers the
//! first `ReadBody` as [`Frame::RequestBodyFile`], with (as an `SCM_RIGHTS` descriptor) that
//! file opened for reading: the daemon reads its `length` bytes itself, at its own offsets,
//! then asks for what follows as before (`RequestBodyEnd`, or the rest of a body larger than
//! the spool's limit).
//!
//! Apache's authentication asks an application's user store the same way, in one round trip
//! (plus log lines): [`Frame::UserQuery`], answered by [`Frame::UserAnswer`] or `Failed`.
//!
//! A daemon that is being recycled sends [`Frame::Goodbye`] on each idle connection and closes
//! it, never reading a request sent on it after that: a child that reads `Goodbye` where it
//! expected an answer sends its request again on another connection, and nothing is lost.
//! Bodies are pulled, never pushed: the daemon asks for request body when the application
//! reads, and the child writes response data to the client before it reads the next frame,
//! so neither side buffers a whole body.
//!
//! # Frames
//! An 8-byte header — kind (`u8`), flags (`u8`, zero), reserved (`u16`, zero), payload length
//! (`u32`, little-endian) — then the payload. Byte strings are a `u32` length and the bytes;
//! lists are a `u32` count and the items. Every length is checked against [`Limits`] before
//! anything is buffered, so a peer cannot make the other side allocate more than the limit.

mod decode;
mod encode;
mod frame;
mod pairs;

pub use decode::{DecodeError, Decoder};
pub use encode::{
    HeadFields, PairWriter, body_frame_parts, encode, encode_request_head, response_body_header,
};
pub use frame::{Frame, HEADER_LEN, Limits, PROTOCOL_VERSION, RequestHead, TOKEN_LEN, UserQuery};
pub use pairs::{Pairs, PairsBuilder};

/// Decodes `data` as a stream of frames and checks that each decodes again identically after
/// re-encoding. The fuzz target runs this on arbitrary input; it must never panic.
#[doc(hidden)]
pub fn fuzz_decode(data: &[u8]) {
    let limits = Limits::default();
    let mut decoder = Decoder::new(limits);
    // Feed in two pieces so that frames split across reads are exercised too.
    let split = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    for piece in [&data[..split], &data[split..]] {
        decoder.extend(piece);
        while let Ok(Some(frame)) = decoder.next_frame() {
            let mut encoded = bytes::BytesMut::new();
            encode(&frame, &mut encoded);
            let mut again = Decoder::new(limits);
            again.extend(&encoded);
            let decoded = again
                .next_frame()
                .expect("a decoded frame re-encodes validly");
            assert_eq!(decoded.as_ref(), Some(&frame));
        }
    }
}
