use std::borrow::Cow;
use std::task::{Poll, Waker};

use bytes::Bytes;

use crate::Error;

/// A piece of a streamed response body.
#[derive(Debug)]
pub enum Chunk {
    /// Bytes to send.
    Data(Bytes),
    /// Send everything written so far to the client now.
    Flush,
    /// Trailers, sent after the body: HTTP/2 trailers (gRPC's `grpc-status`), or over
    /// HTTP/1.1 in the last chunk to a client that sent `TE: trailers`; dropped otherwise.
    /// Given before the body ends, once (several are merged). A name or value Apache refuses
    /// is dropped and logged.
    Trailers(Vec<(HeaderText, HeaderBytes)>),
}

/// A response body: nothing, bytes in hand, or a stream produced while it is sent.
///
/// A stream is dropped exactly once when the response is finished, whether it was sent to the
/// end, failed, or the client went away: put clean-up in its `Drop`.
pub enum ResponseBody {
    Empty,
    Full(Bytes),
    /// Chunks produced by an iterator: each `next` may block until the chunk is ready.
    Stream(Box<dyn Iterator<Item = Result<Chunk, Error>> + Send>),
    /// Chunks that may not be ready yet; while one is awaited, no thread is held (in a daemon
    /// group; embedded, Apache's thread waits for it).
    Polled(Box<dyn PollBody>),
}

/// A response body whose next chunk may not be ready yet, like an async stream.
pub trait PollBody: Send {
    /// The next chunk, `Ready(None)` at the end, or `Pending` after arranging for `waker` to
    /// be woken when there is more.
    fn poll_next(&mut self, waker: &Waker) -> Poll<Option<Result<Chunk, Error>>>;

    /// After `Pending`: whether the body also waits for request body that
    /// [`crate::BodyReader::read_now`] did not have yet (a full-duplex stream), so the host
    /// polls again when more arrives. `waker` is then woken only for the body's own reasons.
    fn waits_for_request_body(&self) -> bool {
        false
    }
}

impl ResponseBody {
    /// A body produced chunk by chunk while Apache sends it.
    pub fn stream<I>(chunks: I) -> ResponseBody
    where
        I: Iterator<Item = Result<Chunk, Error>> + Send + 'static,
    {
        ResponseBody::Stream(Box::new(chunks))
    }
}

impl From<&'static str> for ResponseBody {
    fn from(s: &'static str) -> ResponseBody {
        ResponseBody::Full(Bytes::from_static(s.as_bytes()))
    }
}

impl From<String> for ResponseBody {
    fn from(s: String) -> ResponseBody {
        ResponseBody::Full(Bytes::from(s))
    }
}

impl From<Vec<u8>> for ResponseBody {
    fn from(v: Vec<u8>) -> ResponseBody {
        ResponseBody::Full(Bytes::from(v))
    }
}

impl From<Bytes> for ResponseBody {
    fn from(b: Bytes) -> ResponseBody {
        ResponseBody::Full(b)
    }
}

/// Header names: static text costs no allocation.
pub type HeaderText = Cow<'static, str>;

/// A header value: text, or any bytes HTTP allows in a value (bytes above 0x7F as obs-text),
/// passed to the client exactly. Static values cost no allocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderBytes(Cow<'static, [u8]>);

impl HeaderBytes {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl From<&'static str> for HeaderBytes {
    fn from(value: &'static str) -> HeaderBytes {
        HeaderBytes(Cow::Borrowed(value.as_bytes()))
    }
}

impl From<String> for HeaderBytes {
    fn from(value: String) -> HeaderBytes {
        HeaderBytes(Cow::Owned(value.into_bytes()))
    }
}

impl From<Cow<'static, str>> for HeaderBytes {
    fn from(value: Cow<'static, str>) -> HeaderBytes {
        match value {
            Cow::Borrowed(text) => text.into(),
            Cow::Owned(text) => text.into(),
        }
    }
}

impl From<&'static [u8]> for HeaderBytes {
    fn from(value: &'static [u8]) -> HeaderBytes {
        HeaderBytes(Cow::Borrowed(value))
    }
}

impl From<Vec<u8>> for HeaderBytes {
    fn from(value: Vec<u8>) -> HeaderBytes {
        HeaderBytes(Cow::Owned(value))
    }
}

/// An HTTP response. Apache refuses a status outside 200–599 and header names or values with
/// CR, LF or NUL: the client then gets a 500 and the error log says why.
///
/// An `X-Sendfile: /absolute/path` header (where the configuration allows it with
/// `RustAppSendfileRoot`) makes Apache send that file as the body itself, with ranges and
/// conditional requests; the body set here is then dropped.
pub struct Response {
    status: u16,
    headers: Vec<(HeaderText, HeaderBytes)>,
    body: ResponseBody,
    /// Sent after the body, as `Chunk::Trailers` would be.
    trailers: Vec<(HeaderText, HeaderBytes)>,
}

impl Response {
    /// A response with this status, no headers and no body.
    pub fn new(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: ResponseBody::Empty,
            trailers: Vec::new(),
        }
    }

    /// 200 with a `text/plain` body.
    pub fn text(body: impl Into<ResponseBody>) -> Response {
        Response::new(200)
            .with_header("Content-Type", "text/plain; charset=utf-8")
            .with_body(body)
    }

    /// Adds a header (several with the same name are all sent).
    pub fn with_header(
        mut self,
        name: impl Into<HeaderText>,
        value: impl Into<HeaderBytes>,
    ) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Replaces the body.
    pub fn with_body(mut self, body: impl Into<ResponseBody>) -> Response {
        self.body = body.into();
        self
    }

    /// Adds a trailer, sent after the body whatever its kind, as [`Chunk::Trailers`] are: a
    /// gRPC answer's `grpc-status`, for one. With a body in hand, body and trailers go out
    /// together, with the head.
    pub fn with_trailer(
        mut self,
        name: impl Into<HeaderText>,
        value: impl Into<HeaderBytes>,
    ) -> Response {
        self.trailers.push((name.into(), value.into()));
        self
    }

    pub fn status(&self) -> u16 {
        self.status
    }

    /// The headers set so far, values as bytes (`std::str::from_utf8` gives text back).
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.headers.iter().map(|(n, v)| (n.as_ref(), v.as_bytes()))
    }

    pub fn body(&self) -> &ResponseBody {
        &self.body
    }

    /// The trailers set so far.
    pub fn trailers(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.trailers
            .iter()
            .map(|(n, v)| (n.as_ref(), v.as_bytes()))
    }

    /// Splits the response into its head and body; trailers end the body, as a last
    /// [`Chunk::Trailers`].
    pub fn into_parts(self) -> (u16, Vec<(HeaderText, HeaderBytes)>, ResponseBody) {
        let (status, headers, body, trailers) = self.into_answer();
        (status, headers, body.followed_by(trailers))
    }

    /// Head, body and trailers apart, for the glue: a whole body and its trailers can be
    /// handed over together.
    pub(crate) fn into_answer(self) -> (u16, Headers, ResponseBody, Headers) {
        (self.status, self.headers, self.body, self.trailers)
    }
}

/// Header or trailer fields as a response keeps them.
pub(crate) type Headers = Vec<(HeaderText, HeaderBytes)>;

impl ResponseBody {
    /// This body, then `trailers` (if any) as its last chunk.
    pub(crate) fn followed_by(self, trailers: Headers) -> ResponseBody {
        if trailers.is_empty() {
            return self;
        }
        let last = |trailers| std::iter::once(Ok(Chunk::Trailers(trailers)));
        match self {
            ResponseBody::Empty => ResponseBody::stream(last(trailers)),
            ResponseBody::Full(data) => {
                ResponseBody::stream(std::iter::once(Ok(Chunk::Data(data))).chain(last(trailers)))
            }
            ResponseBody::Stream(chunks) => ResponseBody::stream(chunks.chain(last(trailers))),
            ResponseBody::Polled(body) => ResponseBody::Polled(Box::new(ThenTrailers {
                body,
                trailers: Some(trailers),
            })),
        }
    }
}

/// A polled body whose end is followed by trailers.
struct ThenTrailers {
    body: Box<dyn PollBody>,
    trailers: Option<Headers>,
}

impl PollBody for ThenTrailers {
    fn poll_next(&mut self, waker: &Waker) -> Poll<Option<Result<Chunk, Error>>> {
        match self.body.poll_next(waker) {
            Poll::Ready(None) => Poll::Ready(self.trailers.take().map(|t| Ok(Chunk::Trailers(t)))),
            other => other,
        }
    }

    fn waits_for_request_body(&self) -> bool {
        self.body.waits_for_request_body()
    }
}
