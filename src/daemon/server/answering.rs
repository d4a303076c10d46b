//! One request or user query answered by an application, as frames to the Apache child: the
//! same "call, check the head, produce the body" as embedded mode, filling frames instead of
//! Apache's response.

use std::io;
use std::os::fd::AsFd;
use std::time::Duration;

use bytes::Bytes;
use rustapp_daemon_protocol::{Frame, RequestHead, UserQuery};

use super::ServeOptions;
use super::apps::DaemonApps;
use super::clock::AppClock;
use super::outcome::Returned;
use super::stream::Stream;
use crate::daemon::connection::Connection;
use crate::daemon::os::monotonic_us;
use crate::daemon::request_state::DaemonRequest;
use crate::host::{BodyPiece, Failure, ResponseBody, SWITCHING_PROTOCOLS, UserQuestion, answer};

/// Serves one request: its answer, or a `Failed` frame saying why there is none. A response
/// whose body waits is handed back as [`Returned::Waiting`].
pub(super) fn serve_request(
    conn: Connection,
    head: Box<RequestHead>,
    upgrade_offer: Option<Bytes>,
    apps: &'static DaemonApps,
    options: &ServeOptions,
    clock: &AppClock<'_>,
) -> Returned {
    let refusal = queued_too_long(&head, options);
    let (app_index, limit) = (head.app, wait_limit(head.idle_timeout_ms, options));
    let _running = clock.running(&head.uri);
    // Made first: what a refused request's client sent with its head is read past.
    let request = DaemonRequest::offering(conn, head, upgrade_offer);
    if let Some(refusal) = refusal {
        return sent(request.send(&refusal), request.into_connection());
    }
    let app = match apps.get(app_index) {
        Ok(app) => app,
        Err(reason) => {
            let written = request.send(&failed(500, &reason));
            return sent(written, request.into_connection());
        }
    };
    let answered = {
        let _in_app = clock.enter(limit);
        answer(app, &*request)
    };
    let answer = match answered {
        Ok(answer) => answer,
        Err(failure) => {
            let status = failure.status();
            let reason = match failure {
                Failure::Stopped => "the application is shutting down in this daemon".to_owned(),
                other => format!("the application {other}"),
            };
            let written = request.send(&failed(status, &reason));
            return sent(written, request.into_connection());
        }
    };
    let (status, headers) = (answer.head.status, request.take_headers());
    if let Some(named) = request.sendfile() {
        drop(answer.body);
        return hand_file(request, Frame::ResponseHead { status, headers }, &named);
    }
    let queued = request.queue(&Frame::ResponseHead { status, headers });
    if status == SWITCHING_PROTOCOLS {
        let with_body = answer.body.is_some() || answer.whole.is_some();
        drop(answer.body);
        return switch(request, with_body, queued);
    }
    // A body handed over whole during `handle` goes out with the head, in one write, and so
    // do trailers given during `handle`.
    let whole = answer.whole.filter(|whole| !whole.is_empty());
    let Some(body) = answer.body else {
        let written = queued
            .and_then(|()| match whole {
                Some(whole) => request.queue(&Frame::ResponseBody(whole)),
                None => Ok(()),
            })
            .and_then(|()| match request.take_trailers() {
                Some(trailers) => request.queue(&trailers),
                None => Ok(()),
            })
            .and_then(|()| request.send(&Frame::ResponseEnd));
        return sent(written, request.into_connection());
    };
    if queued.is_err() {
        return Returned::Closed;
    }
    let max_chunk = options.limits.max_body_chunk as usize;
    match Stream::new(request, body, limit) {
        Ok(stream) => stream.pump(clock, max_chunk).into(),
        Err((request, body)) => send_in_place(request, body, clock, limit, max_chunk),
    }
}

/// The application took the connection over: `Switched` follows the 101 head, carrying the
/// daemon's end of the application's socket pair to the Apache child, which relays it to the
/// client itself. The connection then only tells when the tunnel is over (the child closes
/// it). `with_body`: the application gave a body too, which was dropped.
fn switch(request: Box<DaemonRequest>, with_body: bool, queued: io::Result<()>) -> Returned {
    if with_body {
        log::warn!("daemon: an application answered 101 with a body; the body was dropped");
    }
    // A 101 is accepted only once the application took the connection.
    let Some(tunnel_end) = request.take_tunnel_end() else {
        return Returned::Closed;
    };
    let mut conn = request.into_connection();
    let handed = queued.and_then(|()| conn.send_with_fd(&Frame::Switched, tunnel_end.as_fd()));
    // The Apache child holds its own copy now; this one closes.
    drop(tunnel_end);
    match handed {
        Ok(()) => Returned::Tunnel(conn),
        Err(_) => Returned::Closed,
    }
}

/// The application named a file for Apache to send (`X-Sendfile`): it is opened here, with
/// the daemon's rights, and passed with the head; the Apache child checks where it really is
/// and sends it.
fn hand_file(request: Box<DaemonRequest>, head: Frame, named: &[u8]) -> Returned {
    use std::os::unix::ffi::OsStrExt;
    let path = std::path::Path::new(std::ffi::OsStr::from_bytes(named));
    let opened = if path.is_absolute() {
        std::fs::File::open(path)
    } else {
        Err(io::Error::other("not an absolute path"))
    };
    let written = match opened {
        Ok(file) => {
            let handed = request.connection().send_with_fd(&head, file.as_fd());
            handed.and_then(|()| request.send(&Frame::ResponseEnd))
        }
        Err(e) => {
            let status = if e.kind() == io::ErrorKind::NotFound {
                404
            } else {
                500
            };
            let reason = format!(
                "the application named {:?} for Apache to send (X-Sendfile), which the daemon cannot open: {e}",
                String::from_utf8_lossy(named)
            );
            request.send(&failed(status, &reason))
        }
    };
    sent(written, request.into_connection())
}

/// The wait limit of a request: the URL's stream-idle-timeout, else the group's
/// request-timeout.
fn wait_limit(idle_timeout_ms: u32, options: &ServeOptions) -> Duration {
    match idle_timeout_ms {
        0 => options.request_timeout,
        ms => Duration::from_millis(u64::from(ms)),
    }
}

/// The connection, after a frame was (or was not) written on it.
fn sent(written: io::Result<()>, conn: Connection) -> Returned {
    match written {
        Ok(()) => Returned::Idle(conn),
        Err(_) => Returned::Closed,
    }
}

/// Sends the body of an application built before bodies could wait (ABI 1.1) on this thread,
/// which that application requires; writes wait for the Apache child.
fn send_in_place(
    request: Box<DaemonRequest>,
    mut body: ResponseBody<'static>,
    clock: &AppClock<'_>,
    limit: Duration,
    max_chunk: usize,
) -> Returned {
    loop {
        let frame = {
            let _in_app = clock.enter(limit);
            match body.next() {
                BodyPiece::Data(data) => {
                    for piece in data.chunks(max_chunk) {
                        if request.connection().queue_response_body(piece).is_err() {
                            return Returned::Closed;
                        }
                    }
                    continue;
                }
                BodyPiece::Flush => Frame::Flush,
                BodyPiece::End => {
                    if let Some(trailers) = request.take_trailers() {
                        if request.queue(&trailers).is_err() {
                            return Returned::Closed;
                        }
                    }
                    Frame::ResponseEnd
                }
                // A pending body without the ABI that allows it is a failure.
                BodyPiece::Failed | BodyPiece::Pending(_) | BodyPiece::PendingInput(_) => {
                    Frame::ResponseAbort {
                        reason: Bytes::from_static(
                            b"the application failed while producing its body",
                        ),
                    }
                }
            }
        };
        let last = !matches!(frame, Frame::Flush);
        if request.send(&frame).is_err() {
            return Returned::Closed;
        }
        if last {
            drop(body);
            return Returned::Idle(request.into_connection());
        }
    }
}

/// Asks an application's user store, for an Apache child authenticating a request.
pub(super) fn answer_user_query(
    mut conn: Connection,
    query: UserQuery,
    apps: &DaemonApps,
    options: &ServeOptions,
) -> io::Result<Connection> {
    if let Some(refusal) = queued_too_long(&query.head, options) {
        return conn.send(&refusal).map(|()| conn);
    }
    let Some(question) = UserQuestion::from_wire(query.question) else {
        return Err(protocol_error(&format!(
            "unknown user store question {}",
            query.question
        )));
    };
    let app = match apps.get(query.head.app) {
        Ok(app) => app,
        Err(reason) => return conn.send(&failed(500, &reason)).map(|()| conn),
    };
    let request = DaemonRequest::without_body(conn, Box::new(query.head));
    let answer = app.ask_users(question, &request.abi_request(), &query.user, &query.secret);
    let frame = match answer {
        Some(answer) => {
            let (code, values) = answer.into_code();
            Frame::UserAnswer { code, values }
        }
        None => failed(503, "the application is shutting down in this daemon"),
    };
    request.send(&frame)?;
    Ok(request.into_connection())
}

/// A 503 for a request or query that waited past the group's queue-timeout for a thread
/// (counted from when its Apache child sent it, as mod_wsgi counts from when its child queued
/// it: the wait happens in the socket, where no thread sees it).
fn queued_too_long(head: &RequestHead, options: &ServeOptions) -> Option<Frame> {
    let waited = Some(monotonic_us().saturating_sub(head.sent_at_us))
        .filter(|_| head.sent_at_us != 0)
        .map(Duration::from_micros)
        .filter(|w| *w > options.queue_timeout)?;
    Some(failed(
        503,
        &format!(
            "the request waited {} s for a free thread, past the group's queue-timeout of {} s",
            waited.as_secs(),
            options.queue_timeout.as_secs()
        ),
    ))
}

pub(super) fn failed(status: u16, reason: &str) -> Frame {
    Frame::Failed {
        status,
        reason: Bytes::copy_from_slice(reason.as_bytes()),
    }
}

pub(super) fn protocol_error(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}
