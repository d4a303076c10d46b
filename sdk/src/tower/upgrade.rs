//! Protocol upgrades (WebSocket) for tower services.
//!
//! axum's `WebSocketUpgrade` takes hyper's `OnUpgrade` from the request's extensions, and
//! only hyper's own server can make one. So a request that offers an upgrade is served
//! through hyper's HTTP/1 server, over a connection object of ours: it reads the request as
//! HTTP/1.1 bytes (whatever protocol it came in, so that it looks like HTTP/1.1 to the
//! service), and when the service answers 101 it becomes the socket Apache hands over, which
//! hyper then gives the service's upgrade task. Any other answer is taken from the service
//! before hyper writes it and goes out like every other response.

use std::cell::RefCell;
use std::future::{Future, poll_fn};
use std::io;
use std::os::unix::net::UnixStream;
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker, ready};

use bytes::{Buf, Bytes, BytesMut};
use hyper::rt::{Read, ReadBufCursor, Write};
use tokio::io::{AsyncRead, AsyncWrite};

use super::RequestInfo;
use super::body::Body;
use super::erased::{BoxBody, ErasedService};
use super::runtime;
use crate::{Error, Request};

/// What the service answered, taken from hyper's hands.
type Answer = http::Response<BoxBody>;

/// Serves a request that offers an upgrade; `Ok` is the service's response. After a 101 the
/// connection is the service's (hyper's upgrade has the socket).
/// `target` is the request target below the mount point, which the service routes by.
pub(super) fn serve_upgradable(
    service: Arc<dyn ErasedService>,
    request: &mut Request<'_>,
    target: &str,
) -> Result<Answer, Error> {
    let handover = Arc::new(Handover::default());
    let io = HostIo {
        request: request_bytes(request, target),
        handover: handover.clone(),
        live: None,
        head_end: 0,
    };
    let info = RequestInfo::from_request(request);
    let answered: Rc<RefCell<Option<Answer>>> = Rc::default();
    let failure: Rc<RefCell<Option<Error>>> = Rc::default();
    let handler = {
        let (answered, failure) = (answered.clone(), failure.clone());
        hyper::service::service_fn(move |incoming: http::Request<hyper::body::Incoming>| {
            let (answered, failure) = (answered.clone(), failure.clone());
            let (mut parts, _) = incoming.into_parts();
            parts.extensions.insert(info.clone());
            let future = service.call_erased(http::Request::from_parts(parts, Body::empty()));
            async move {
                let response = match future.await {
                    Ok(response) => response,
                    Err(e) => {
                        *failure.borrow_mut() = Some(e);
                        return Err(io::Error::other("the service failed"));
                    }
                };
                // hyper sees the switch (to hand its upgrade over); the real answer, whatever
                // it is, goes out through Apache.
                let mut seen = http::Response::new(EmptyBody);
                *seen.status_mut() = response.status();
                *seen.headers_mut() = response.headers().clone();
                *answered.borrow_mut() = Some(response);
                Ok::<_, io::Error>(seen)
            }
        })
    };
    let connection = hyper::server::conn::http1::Builder::new()
        .serve_connection(io, handler)
        .with_upgrades();
    let mut connection = pin!(connection);
    // Until the service has answered (or hyper gave up on the request).
    let finished = std::cell::Cell::new(false);
    let served = runtime::block_on(poll_fn(|cx| {
        let polled = connection.as_mut().poll(cx);
        finished.set(polled.is_ready());
        if answered.borrow().is_some() {
            return Poll::Ready(Ok(()));
        }
        match polled {
            Poll::Ready(Ok(())) => Poll::Ready(Err(Error::from(
                "the request could not be served as an HTTP/1.1 upgrade",
            ))),
            Poll::Ready(Err(e)) => Poll::Ready(Err(Error::from(format!(
                "the request could not be served as an HTTP/1.1 upgrade: {e}"
            )))),
            Poll::Pending => Poll::Pending,
        }
    }));
    if let Some(e) = failure.borrow_mut().take() {
        return Err(e);
    }
    served?;
    let answer = answered.borrow_mut().take().expect("checked above");
    if answer.status() != http::StatusCode::SWITCHING_PROTOCOLS {
        return Ok(answer);
    }
    // The service's upgrade task may be running already, waiting for the socket: it gets
    // the socket, or (if it cannot be had) the end of the connection.
    let taken = request.accept_upgrade().and_then(|socket| {
        socket
            .set_nonblocking(true)
            .map(|()| socket)
            .map_err(|e| Error::from(format!("cannot use the handed-over connection: {e}")))
    });
    match taken {
        Ok(socket) => handover.hand(Some(socket)),
        Err(e) => {
            handover.hand(None);
            return Err(e);
        }
    }
    // hyper writes its 101 (which goes nowhere: Apache sends the real one) and hands the
    // connection to the service's upgrade, if it has not yet; nothing here waits for the
    // network.
    if !finished.get() {
        runtime::block_on(connection)
            .map_err(|e| format!("the upgrade could not be handed to the service: {e}"))?;
    }
    Ok(answer)
}

/// The body of the response hyper sees: nothing.
struct EmptyBody;

impl http_body::Body for EmptyBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        true
    }
}

/// The request as HTTP/1.1 bytes for hyper: the target below the mount point, the headers as
/// Apache received them (an HTTP/2 request's `Host` from its authority) with `Connection:
/// upgrade` (which an HTTP/2 request cannot carry), and no body (an HTTP/2 WebSocket's
/// "body" is the stream the switched protocol runs over).
fn request_bytes(request: &Request<'_>, target: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(1024);
    out.extend_from_slice(request.method().as_bytes());
    out.extend_from_slice(b" ");
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nConnection: upgrade\r\n");
    let mut has_host = false;
    request.for_each_header(|name, value| {
        let framing = ["connection", "transfer-encoding", "content-length"];
        if framing
            .iter()
            .any(|h| name.eq_ignore_ascii_case(h.as_bytes()))
        {
            return;
        }
        has_host |= name.eq_ignore_ascii_case(b"host");
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    });
    if !has_host {
        let host = request.var("SERVER_NAME").unwrap_or("localhost");
        out.extend_from_slice(b"Host: ");
        out.extend_from_slice(host.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.freeze()
}

/// The socket Apache hands over, passed from the request's thread to whichever task reads
/// the upgraded connection (which may be waiting for it already).
#[derive(Default)]
struct Handover(Mutex<HandoverState>);

#[derive(Default)]
struct HandoverState {
    socket: Option<UnixStream>,
    /// Nothing will be handed over: the connection reads as ended.
    closed: bool,
    waiting: Option<Waker>,
}

impl Handover {
    /// Hands `socket` over, or (`None`) ends the connection.
    fn hand(&self, socket: Option<UnixStream>) {
        let mut state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        state.closed = socket.is_none();
        state.socket = socket;
        if let Some(waker) = state.waiting.take() {
            waker.wake();
        }
    }

    /// The socket once handed over (`Ready(None)`: never); `Pending` until then.
    fn take(&self, cx: &mut Context<'_>) -> Poll<Option<UnixStream>> {
        let mut state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(socket) = state.socket.take() {
            return Poll::Ready(Some(socket));
        }
        if state.closed {
            return Poll::Ready(None);
        }
        state.waiting = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// hyper's connection: first the request's bytes; after a 101, the socket Apache handed over.
struct HostIo {
    /// What is left of the request.
    request: Bytes,
    handover: Arc<Handover>,
    live: Option<tokio::net::UnixStream>,
    /// How much of the end of hyper's response head (`\r\n\r\n`) was written: hyper's 101 is
    /// dropped, only what follows it goes to the socket.
    head_end: usize,
}

impl HostIo {
    /// The handed-over socket, once the service switched (`Pending` until then).
    fn live(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<&mut tokio::net::UnixStream>> {
        if self.live.is_none() {
            match ready!(self.handover.take(cx)) {
                Some(socket) => self.live = Some(tokio::net::UnixStream::from_std(socket)?),
                None => return Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
            }
        }
        Poll::Ready(Ok(self.live.as_mut().expect("set above")))
    }
}

const HEAD_END: &[u8] = b"\r\n\r\n";

impl Read for HostIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.request.is_empty() {
            let n = self.request.len().min(buf.remaining());
            buf.put_slice(&self.request[..n]);
            self.request.advance(n);
            return Poll::Ready(Ok(()));
        }
        // Before a switch there is nothing more: hyper waits for the service meanwhile.
        let socket = ready!(self.live(cx))?;
        // SAFETY: tokio's ReadBuf only writes initialised bytes into the cursor's spare
        // room and reports how many; the cursor advances by exactly that.
        let filled = unsafe {
            let mut read = tokio::io::ReadBuf::uninit(buf.as_mut());
            ready!(Pin::new(socket).poll_read(cx, &mut read))?;
            read.filled().len()
        };
        // SAFETY: `filled` bytes were initialised above.
        unsafe { buf.advance(filled) };
        Poll::Ready(Ok(()))
    }
}

impl Write for HostIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.head_end < HEAD_END.len() {
            // Dropping hyper's response head, up to and including its blank line.
            for (i, &byte) in data.iter().enumerate() {
                self.head_end = match byte {
                    _ if byte == HEAD_END[self.head_end] => self.head_end + 1,
                    b'\r' => 1,
                    _ => 0,
                };
                if self.head_end == HEAD_END.len() {
                    return Poll::Ready(Ok(i + 1));
                }
            }
            return Poll::Ready(Ok(data.len()));
        }
        let socket = ready!(self.live(cx))?;
        Pin::new(socket).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // hyper flushes its own (dropped) head before any switch.
        if self.head_end < HEAD_END.len() || self.live.is_none() {
            return Poll::Ready(Ok(()));
        }
        let socket = ready!(self.live(cx))?;
        Pin::new(socket).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let socket = ready!(self.live(cx))?;
        Pin::new(socket).poll_shutdown(cx)
    }
}
