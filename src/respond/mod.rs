//! The one response pipeline: an accepted head and a body source in, bytes to the client out.
//! It sets the status, sends nothing after the head of a HEAD request, holds the body to a
//! declared `Content-Length`, passes flushes on, waits for a body that has nothing yet while
//! watching the client, and ends a body that broke off as an aborted response (never a clean
//! end the client would trust). Embedded serving and the daemon client both deliver through it.

mod sendfile;
mod ticks;
mod tunnel;

pub(crate) use sendfile::send_named_file;
pub(crate) use tunnel::{TunnelSlot, relay};

use std::fmt::Display;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use ticks::{LOOK_AROUND, PROBE_H2};

use crate::ffi::{HttpStatus, Request, Woke, is_stopping, wait_readable};
use crate::host::{BodyPiece, ResponseBody, ResponseHead};

/// Where a response body comes from: an embedded instance, or a daemon's frames.
pub(crate) trait BodySource {
    fn next_piece(&mut self) -> BodyPiece<'_>;

    /// The response is given up (the client went away, or Apache is stopping): the producer
    /// is told, where it can be. The body is dropped after this.
    fn abandon(&mut self) {}
}

impl BodySource for ResponseBody<'_> {
    fn next_piece(&mut self) -> BodyPiece<'_> {
        self.next()
    }
}

/// A body the application handed over whole during `handle`: one piece, then the end.
pub(crate) struct WholeBody<'a>(pub(crate) Option<&'a [u8]>);

impl BodySource for WholeBody<'_> {
    fn next_piece(&mut self) -> BodyPiece<'_> {
        match self.0.take() {
            Some(data) => BodyPiece::Data(data),
            None => BodyPiece::End,
        }
    }
}

/// What a URL's configuration says about delivering its answers.
pub(crate) struct Delivery<'a> {
    /// `RustAppStreamIdleTimeout`: how long a body (or a tunnel) may wait with nothing to
    /// send.
    pub(crate) idle: Option<Duration>,
    /// `RustAppErrorOverride`: Apache's error handling replaces the application's 4xx and 5xx
    /// bodies.
    pub(crate) error_override: bool,
    /// `RustAppSendfileRoot`: where `X-Sendfile` may name files.
    pub(crate) sendfile_roots: &'a [std::path::PathBuf],
    /// Set by daemon mode: the daemon process that answered (for `RustAppSlowRequestLog`).
    pub(crate) answered_by: std::cell::Cell<Option<u32>>,
}

/// How long a body may wait with nothing to send before the response is aborted; `None`: as
/// long as it takes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct IdleLimit(pub(crate) Option<Duration>);

/// The status Apache answers in place of an application's error answer when its error
/// handling takes over here (`RustAppErrorOverride On`): a 4xx or 5xx; the application's
/// body is not sent.
pub(crate) fn overridden_error(head: &ResponseHead, error_override: bool) -> Option<HttpStatus> {
    (error_override && head.status >= 400)
        .then(|| HttpStatus::error_or(head.status, HttpStatus::INTERNAL_SERVER_ERROR))
}

/// Delivers a response whose head was accepted: `who` names the application in log lines.
pub(crate) fn deliver(
    request: Request<'_>,
    who: &dyn Display,
    head: ResponseHead,
    body: Option<&mut dyn BodySource>,
    idle: IdleLimit,
) {
    request.set_status(head.status);
    if let Some(body) = body {
        if !request.is_head() {
            send_body(request, who, body, head.content_length, idle);
        }
    }
}

/// Streams the body to the client, holding it to a declared `Content-Length`.
fn send_body(
    request: Request<'_>,
    who: &dyn Display,
    body: &mut dyn BodySource,
    declared: Option<u64>,
    idle: IdleLimit,
) {
    let mut sent: u64 = 0;
    loop {
        let waiting_on = match body.next_piece() {
            BodyPiece::Data(bytes) => {
                let room = declared.map_or(u64::MAX, |limit| limit - sent);
                let overflow = bytes.len() as u64 > room;
                let bytes = if overflow {
                    &bytes[..room as usize]
                } else {
                    bytes
                };
                if request.write(bytes).is_err() {
                    log::debug!("the client went away after {sent} bytes of the response");
                    body.abandon();
                    return;
                }
                sent += bytes.len() as u64;
                if overflow {
                    log::error!(
                        "{who} sent more than its Content-Length of {}; the excess was dropped",
                        declared.unwrap_or_default()
                    );
                    return;
                }
                continue;
            }
            BodyPiece::Flush => {
                if request.flush().is_err() {
                    log::debug!("the client went away after {sent} bytes of the response");
                    body.abandon();
                    return;
                }
                continue;
            }
            BodyPiece::End => return end(request, who, sent, declared),
            BodyPiece::Failed => {
                log::error!(
                    "{who} failed while producing its body, after {sent} bytes; the response was aborted"
                );
                request.abort_response();
                return;
            }
            BodyPiece::Pending(fd) => (fd, false),
            BodyPiece::PendingInput(fd) => (fd, true),
        };
        match wait(request, waiting_on, idle) {
            Waited::Ready => {}
            Waited::ClientGone => {
                log::debug!(
                    "the client went away after {sent} bytes, while the response waited for more"
                );
                body.abandon();
                return;
            }
            Waited::Stopping => {
                log::info!(
                    "{who}: this Apache process is stopping, so the response ends here after {sent} bytes (a client can reconnect)"
                );
                body.abandon();
                return end(request, who, sent, declared);
            }
            Waited::Idle(limit) => {
                log::error!(
                    "{who} produced nothing for {} s (its stream-idle-timeout), after {sent} bytes; the response was aborted",
                    limit.as_secs()
                );
                body.abandon();
                request.abort_response();
                return;
            }
        }
    }
}

/// A body that ended: cleanly, unless it fell short of its `Content-Length`.
fn end(request: Request<'_>, who: &dyn Display, sent: u64, declared: Option<u64>) {
    if let Some(limit) = declared.filter(|&limit| sent < limit) {
        log::error!(
            "{who} ended its body after {sent} of the {limit} bytes its Content-Length promised; the response was aborted"
        );
        request.abort_response();
        return;
    }
    // Flushed before the end, the head gets no Content-Length computed from the whole body:
    // the body goes chunked, and its last chunk carries the trailers.
    if request.has_http1_trailers() && request.flush().is_err() {
        log::debug!("the client went away after {sent} bytes of the response");
    }
}

enum Waited {
    Ready,
    ClientGone,
    Stopping,
    Idle(Duration),
}

/// Waits for `fd` (the body's) to be readable, or with `for_input` for the client to send
/// more of its body too (a full-duplex stream), looking each second at the client and at
/// Apache stopping.
fn wait(request: Request<'_>, (fd, for_input): (RawFd, bool), idle: IdleLimit) -> Waited {
    let started = Instant::now();
    let client = request.client_socket_fd();
    let input = for_input.then(|| request.input_fd()).flatten();
    loop {
        // Also between frequent events, which may never leave a quiet second.
        if is_stopping() {
            return Waited::Stopping;
        }
        let left = idle.0.map(|limit| limit.saturating_sub(started.elapsed()));
        if let Some(limit) = idle.0.filter(|_| left.is_some_and(|l| l.is_zero())) {
            return Waited::Idle(limit);
        }
        let look = if client.is_some() {
            LOOK_AROUND
        } else {
            PROBE_H2
        };
        let tick = left.map_or(look, |left| left.min(look));
        match wait_readable(fd, client, input, tick) {
            Woke::Ready => return Waited::Ready,
            Woke::ClientGone => return Waited::ClientGone,
            Woke::TimedOut => {}
        }
        // An HTTP/2 stream has no socket of its own: a reset shows as a failed flush.
        if client.is_none() && request.flush().is_err() {
            return Waited::ClientGone;
        }
    }
}
