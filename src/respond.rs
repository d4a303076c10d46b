//! The one response pipeline: an accepted head and a body source in, bytes to the client out.
//! It sets the status, sends nothing after the head of a HEAD request, holds the body to a
//! declared `Content-Length`, passes flushes on, and ends a body that broke off as an aborted
//! response (never a clean end the client would trust). Embedded serving and the daemon client
//! both deliver through it.

use std::fmt::Display;

use crate::ffi::Request;
use crate::host::{BodyPiece, ResponseBody, ResponseHead};

/// Where a response body comes from: an embedded instance, or a daemon's frames.
pub(crate) trait BodySource {
    fn next_piece(&mut self) -> BodyPiece<'_>;
}

impl BodySource for ResponseBody<'_> {
    fn next_piece(&mut self) -> BodyPiece<'_> {
        self.next()
    }
}

/// Delivers a response whose head was accepted: `who` names the application in log lines.
pub(crate) fn deliver(
    request: Request<'_>,
    who: &dyn Display,
    head: ResponseHead,
    body: Option<&mut dyn BodySource>,
) {
    request.set_status(head.status);
    if let Some(body) = body {
        if !request.is_head() {
            send_body(request, who, body, head.content_length);
        }
    }
}

/// Streams the body to the client, holding it to a declared `Content-Length`.
fn send_body(
    request: Request<'_>,
    who: &dyn Display,
    body: &mut dyn BodySource,
    declared: Option<u64>,
) {
    let mut sent: u64 = 0;
    loop {
        match body.next_piece() {
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
            }
            BodyPiece::Flush => {
                if request.flush().is_err() {
                    log::debug!("the client went away after {sent} bytes of the response");
                    return;
                }
            }
            BodyPiece::End => {
                if let Some(limit) = declared.filter(|&limit| sent < limit) {
                    log::error!(
                        "{who} ended its body after {sent} of the {limit} bytes its Content-Length promised; the response was aborted"
                    );
                    request.abort_response();
                    return;
                }
                return;
            }
            BodyPiece::Failed => {
                log::error!(
                    "{who} failed while producing its body, after {sent} bytes; the response was aborted"
                );
                request.abort_response();
                return;
            }
        }
    }
}
