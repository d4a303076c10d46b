//! One request or user query answered by an application, as frames to the Apache child: the
//! same "call, check the head, produce the body" as embedded mode, filling frames instead of
//! Apache's response.

use std::io;

use bytes::Bytes;
use rustapp_daemon_protocol::{Frame, RequestHead, UserQuery};

use super::ServeOptions;
use super::apps::DaemonApps;
use super::worker::protocol_error;
use crate::daemon::connection::Connection;
use crate::daemon::request_state::DaemonRequest;
use crate::host::{BodyPiece, Failure, UserQuestion, answer};

/// Serves one request: its answer, or a `Failed` frame saying why there is none.
pub(super) fn serve_request(
    conn: &mut Connection,
    head: Box<RequestHead>,
    apps: &DaemonApps,
    options: &ServeOptions,
) -> io::Result<()> {
    if let Some(refusal) = queued_too_long(conn, options) {
        return conn.send(&refusal);
    }
    let app = match apps.get(head.app) {
        Ok(app) => app,
        Err(reason) => return conn.send(&failed(500, &reason)),
    };
    let request = DaemonRequest::new(conn, head);
    let answer = match answer(app, &request) {
        Ok(answer) => answer,
        Err(failure) => {
            let status = failure.status();
            let reason = match failure {
                Failure::Stopped => "the application is shutting down in this daemon".to_owned(),
                other => format!("the application {other}"),
            };
            return request.send(&failed(status, &reason));
        }
    };
    let (status, headers) = (answer.head.status, request.take_headers());
    request.queue(&Frame::ResponseHead { status, headers })?;
    let Some(mut body) = answer.body else {
        return request.send(&Frame::ResponseEnd);
    };
    let max_chunk = options.limits.max_body_chunk as usize;
    loop {
        let frame = match body.next() {
            BodyPiece::Data(data) => {
                for piece in data.chunks(max_chunk) {
                    request.queue(&Frame::ResponseBody(Bytes::copy_from_slice(piece)))?;
                }
                continue;
            }
            BodyPiece::Flush => Frame::Flush,
            BodyPiece::End => Frame::ResponseEnd,
            BodyPiece::Failed => Frame::ResponseAbort {
                reason: Bytes::from_static(b"the application failed while producing its body"),
            },
        };
        let last = !matches!(frame, Frame::Flush);
        request.send(&frame)?;
        if last {
            return Ok(());
        }
    }
}

/// Asks an application's user store, for an Apache child authenticating a request.
pub(super) fn answer_user_query(
    conn: &mut Connection,
    query: UserQuery,
    apps: &DaemonApps,
    options: &ServeOptions,
) -> io::Result<()> {
    if let Some(refusal) = queued_too_long(conn, options) {
        return conn.send(&refusal);
    }
    let Some(question) = UserQuestion::from_wire(query.question) else {
        return Err(protocol_error(&format!(
            "unknown user store question {}",
            query.question
        )));
    };
    let app = match apps.get(query.head.app) {
        Ok(app) => app,
        Err(reason) => return conn.send(&failed(500, &reason)),
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
    request.send(&frame)
}

/// A 503 for a request or query that waited past the group's queue-timeout for a thread.
fn queued_too_long(conn: &Connection, options: &ServeOptions) -> Option<Frame> {
    let waited = conn
        .ready_at
        .map(|t| t.elapsed())
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

fn failed(status: u16, reason: &str) -> Frame {
    Frame::Failed {
        status,
        reason: Bytes::copy_from_slice(reason.as_bytes()),
    }
}
