//! A tower service as an [`App`]: converting requests and responses, and driving the service's
//! future and response body on Apache's thread.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http_body::Body as HttpBody;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tower_service::Service;

use super::body::{Body, Demand, DemandWaker, Pump, ReadAhead, read_ahead};
use super::deadline::{deadline_exceeded, deadline_exceeded_response, grpc_timeout};
use super::erased::{BoxBody, ErasedService};
use super::upgrade::serve_upgradable;
use super::{RequestInfo, runtime};
use crate::response::HeaderText;
use crate::{
    BodyReader, Chunk, Error, HeaderBytes, PollBody, Request, Response, ResponseBody, Settings,
    UserStore,
};

/// A tower service deployed as an application; see [`crate::export_service!`].
pub struct ServiceApp {
    service: Arc<dyn ErasedService>,
    users: Option<Box<dyn UserStore>>,
}

impl ServiceApp {
    /// Starts the SDK's runtime in this process (if not yet) and makes the service.
    pub fn start<S, B, E>(
        settings: &Settings,
        make: impl FnOnce(&Settings) -> Result<S, E>,
    ) -> Result<ServiceApp, Error>
    where
        S: Service<http::Request<Body>, Response = http::Response<B>>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Error: Into<Error>,
        S::Future: 'static,
        B: HttpBody + Send + 'static,
        B::Data: Send,
        B::Error: Into<Error>,
        E: Into<Error>,
    {
        let runtime = runtime::start(settings)?;
        // Inside the runtime, so a service that spawns tasks or opens connections can.
        let service = {
            let _context = runtime.enter();
            make(settings).map_err(Into::into)?
        };
        Ok(ServiceApp {
            service: Arc::new(service),
            users: None,
        })
    }

    /// Adds the user store Apache's authentication asks (`export_service!(make, users =
    /// make_users)`); `make` runs inside the runtime, like the service's.
    pub fn with_users<U, E>(
        mut self,
        settings: &Settings,
        make: impl FnOnce(&Settings) -> Result<U, E>,
    ) -> Result<ServiceApp, Error>
    where
        U: UserStore + 'static,
        E: Into<Error>,
    {
        let _context = runtime::start(settings)?.enter();
        self.users = Some(Box::new(make(settings).map_err(Into::into)?));
        Ok(self)
    }

    /// The user store, if one was added.
    pub fn users(&self) -> Option<&dyn UserStore> {
        self.users.as_deref()
    }

    /// Answers one request through the service.
    pub fn handle(&self, request: &mut Request<'_>) -> Result<Response, Error> {
        if request.upgrade_offer().is_some() {
            return self.handle_upgradable(request);
        }
        // The body is chosen by the request's headers, read from the converted request: a
        // lookup there costs less than one through Apache.
        let mut http_request = to_http_request(request)?;
        let timeout = grpc_timeout(&http_request);
        let on_demand = DemandWaker::default();
        // SAFETY: the reader lives in this call and in the pump, which lives in this call and
        // in the response body, which the host drives and closes (one call at a time) before
        // the request ends.
        let mut reader = unsafe { request.detached_body_reader() };
        let (body, demands) = request_body(
            request.content_length(),
            http_request.headers(),
            &mut reader,
            &on_demand,
        );
        *http_request.body_mut() = body;
        let mut pump = Pump::new(demands, reader, on_demand);
        let started = tokio::time::Instant::now();
        let future = self.service.call_erased(http_request);
        let answered = async {
            let (parts, mut body) = future.await?.into_parts();
            let taken = take_ready_frames(&mut body).await;
            Ok::<_, Error>((parts, body, taken))
        };
        let deadline = timeout.map(|t| started + t);
        let Some(answered) = pump.drive(within(deadline, answered)) else {
            return Ok(deadline_exceeded_response());
        };
        let (parts, body, taken) = answered?;
        // The deadline's timer belongs to the runtime.
        let _context = runtime::get().enter();
        to_response(parts, body, taken, pump, deadline)
    }
}

impl ServiceApp {
    /// Answers a request that offers an upgrade: through hyper, so that the service can take
    /// it (see `upgrade`). Such a request has no body.
    fn handle_upgradable(&self, request: &mut Request<'_>) -> Result<Response, Error> {
        let target = target_below_mount(request);
        let (parts, mut body) =
            serve_upgradable(self.service.clone(), request, &target)?.into_parts();
        let taken = runtime::block_on(take_ready_frames(&mut body));
        // SAFETY: as in `handle`; this request has no body to pump.
        let reader = unsafe { request.detached_body_reader() };
        let pump = Pump::new(None, reader, DemandWaker::default());
        to_response(parts, body, taken, pump, None)
    }
}

/// The first two frames of a response body, as far as they are ready now (`Pending` for one
/// that is not, or was not asked for; `Ready(None)` once the body ended). Most bodies (JSON,
/// text) are complete at once, and a unary gRPC answer is its message, then its trailers:
/// taken while the runtime is entered anyway, they need no streaming machinery at all.
async fn take_ready_frames(body: &mut BoxBody) -> [TakenFrame; 2] {
    let first = poll_fn(|cx| Poll::Ready(body.as_mut().poll_frame(cx))).await;
    let second = match &first {
        Poll::Ready(Some(Ok(frame))) if frame.is_data() => {
            if body.is_end_stream() {
                Poll::Ready(None)
            } else {
                poll_fn(|cx| Poll::Ready(body.as_mut().poll_frame(cx))).await
            }
        }
        _ => Poll::Pending,
    };
    [first, second]
}

/// `future`'s output, or `None` once `deadline` passed first.
async fn within<F: Future>(deadline: Option<Instant>, future: F) -> Option<F::Output> {
    match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, future).await.ok(),
        None => Some(future.await),
    }
}

/// The request's body, and where its demands arrive (nothing to pump for a body-less request,
/// or one that had arrived whole and was read before the service was called).
fn request_body(
    declared: Option<u64>,
    headers: &http::HeaderMap,
    reader: &mut BodyReader<'static>,
    on_demand: &DemandWaker,
) -> (Body, Option<mpsc::UnboundedReceiver<Demand>>) {
    let chunked = headers.contains_key(http::header::TRANSFER_ENCODING);
    if declared == Some(0) || (declared.is_none() && !chunked) {
        return (Body::empty(), None);
    }
    // A client that waits for `100 Continue` sends nothing until the body is read: only the
    // service decides whether it is.
    let ahead = if !headers.contains_key(http::header::EXPECT) && reader.reads_without_waiting() {
        read_ahead(reader)
    } else {
        ReadAhead::Started(None)
    };
    let ahead = match ahead {
        ReadAhead::Whole(data, trailers) => return (Body::read_whole(data, trailers), None),
        ReadAhead::Started(ahead) => ahead,
    };
    let (demands, demanded) = mpsc::unbounded_channel();
    let body = Body::from_apache(ahead, demands, on_demand.clone(), declared);
    (body, Some(demanded))
}

/// The request as tower has it, with an empty body for the caller to fill.
fn to_http_request(request: &Request<'_>) -> Result<http::Request<Body>, Error> {
    let invalid = |e: &dyn std::fmt::Display| {
        format!("the request cannot be represented as an http::Request: {e}")
    };
    let mut http_request = http::Request::new(Body::empty());
    *http_request.method_mut() =
        http::Method::from_bytes(request.method().as_bytes()).map_err(|e| invalid(&e))?;
    // From the `String` itself: the URI keeps its bytes without copying them.
    *http_request.uri_mut() =
        http::Uri::try_from(target_below_mount(request)).map_err(|e| invalid(&e))?;
    *http_request.version_mut() = match request.protocol() {
        "HTTP/1.0" => http::Version::HTTP_10,
        "HTTP/2.0" | "HTTP/2" => http::Version::HTTP_2,
        "HTTP/0.9" => http::Version::HTTP_09,
        _ => http::Version::HTTP_11,
    };
    let headers = http_request.headers_mut();
    let mut bad_header = None;
    request.for_each_header(|name, value| {
        match (
            http::HeaderName::from_bytes(name),
            http::HeaderValue::from_bytes(value),
        ) {
            (Ok(name), Ok(value)) => {
                headers.append(name, value);
            }
            _ => bad_header = Some(String::from_utf8_lossy(name).into_owned()),
        }
    });
    if let Some(name) = bad_header {
        return Err(invalid(&format_args!("header {name:?} is not valid")).into());
    }
    http_request
        .extensions_mut()
        .insert(RequestInfo::from_request(request));
    Ok(http_request)
}

/// The request target as the service should route it: below the mount point, still encoded
/// as the client sent it (`/shop/items?id=3` mounted at `/shop` is `/items?id=3`), so that the
/// service decodes it once, as it would behind any server. The mount point is matched by what
/// it decodes to, whatever spelling the client used (`/%73hop/items` is below `/shop` too).
fn target_below_mount(request: &Request<'_>) -> String {
    let raw = request.uri();
    // An absolute-form target (`GET http://host/path`) routes by its path.
    let raw = match raw.split_once("://") {
        Some((_, rest)) if !raw.starts_with('/') => rest.find('/').map_or("/", |at| &rest[at..]),
        _ => raw,
    };
    let (path, query) = match raw.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (raw, None),
    };
    let below = match raw_below_decoded_prefix(path, request.script_name()) {
        Some("") => "/".to_owned(),
        Some(rest) => rest.to_owned(),
        // Apache normalised the path (merged slashes, removed dot segments) so that the
        // client's spelling no longer shows the mount point: Apache's decoded path, encoded
        // again, decodes to the same bytes once.
        None if request.path_info().is_empty() => "/".to_owned(),
        None => encode_path(request.path_info()),
    };
    match query {
        Some(query) => format!("{below}?{query}"),
        None => below,
    }
}

/// What follows the part of `raw` (an encoded path) that decodes to `prefix`, if `raw` starts
/// with such a part ending at a segment boundary.
fn raw_below_decoded_prefix<'a>(raw: &'a str, prefix: &str) -> Option<&'a str> {
    let (raw_bytes, prefix) = (raw.as_bytes(), prefix.as_bytes());
    let (mut at, mut matched) = (0, 0);
    while matched < prefix.len() {
        let (byte, width) = match raw_bytes.get(at)? {
            b'%' => {
                let hex = std::str::from_utf8(raw_bytes.get(at + 1..at + 3)?).ok()?;
                (u8::from_str_radix(hex, 16).ok()?, 3)
            }
            &byte => (byte, 1),
        };
        if byte != prefix[matched] {
            return None;
        }
        matched += 1;
        at += width;
    }
    let rest = &raw[at..];
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

/// A decoded path encoded again: every byte but the unreserved ones, sub-delimiters, `:`,
/// `@` and `/` as `%XX` (so a `%` in the path is `%25`).
fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for &byte in path.as_bytes() {
        let plain = byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/".contains(&byte);
        if plain {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A frame taken from the body while the head was prepared; `Pending`: none was.
type TakenFrame = Poll<Option<Result<http_body::Frame<Bytes>, Error>>>;

/// The service's response as the SDK's, with the frames already `taken` from its body (in
/// order); a gRPC call's body ends at its `deadline`.
fn to_response(
    parts: http::response::Parts,
    body: BoxBody,
    taken: [TakenFrame; 2],
    pump: Pump,
    deadline: Option<Instant>,
) -> Result<Response, Error> {
    let mut converted = Response::new(parts.status.as_u16());
    for (name, value) in fields(&parts.headers) {
        converted = converted.with_header(name, value);
    }
    // The first data frame, and what followed it, when that was taken too.
    let (mut data, mut after) = (None, None);
    for frame in taken {
        let frame = match frame {
            Poll::Pending => break,
            Poll::Ready(None) => return Ok(with_data(converted, data)),
            Poll::Ready(Some(Err(e))) if data.is_none() => return Err(e),
            Poll::Ready(Some(Err(e))) => {
                after = Some(Err(e));
                break;
            }
            Poll::Ready(Some(Ok(frame))) => frame,
        };
        match frame.into_data() {
            Ok(bytes) if data.is_none() => data = Some(bytes),
            Ok(bytes) => after = Some(Ok(Chunk::Data(bytes))),
            // Trailers end the body: with the data before them (a unary gRPC answer), all of
            // it goes out with the head.
            Err(frame) => {
                if let Ok(trailers) = frame.into_trailers() {
                    return Ok(fields(&trailers)
                        .fold(with_data(converted, data), |response, (name, value)| {
                            response.with_trailer(name, value)
                        }));
                }
            }
        }
    }
    Ok(converted.with_body(ResponseBody::Polled(Box::new(Frames {
        body,
        pump,
        ahead: [data.map(|d| Ok(Chunk::Data(d))), after],
        flushed: true,
        deadline: deadline.map(|at| Box::pin(tokio::time::sleep_until(at))),
        expired: false,
    }))))
}

/// `response` with `data`, if there is any, as its whole body.
fn with_data(response: Response, data: Option<Bytes>) -> Response {
    match data {
        Some(data) => response.with_body(data),
        None => response,
    }
}

/// The response body as chunks for the host, pulled one frame at a time.
struct Frames {
    body: BoxBody,
    pump: Pump,
    /// What was taken from the body while the head was prepared, sent first, in order.
    ahead: [Option<Result<Chunk, Error>>; 2],
    /// Whether a flush was already requested since the last data.
    flushed: bool,
    /// When a gRPC call's `grpc-timeout` passes.
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    /// The deadline passed: the call ended with DEADLINE_EXCEEDED.
    expired: bool,
}

// SAFETY: `Frames` holds the request's body reader, which the host's functions serve for the
// thread calling `body_next`/`body_close`; the host makes those calls one at a time (an ABI
// rule), and a `Frames` is only used inside them.
unsafe impl Send for Frames {}

impl PollBody for Frames {
    fn poll_next(&mut self, waker: &Waker) -> Poll<Option<Result<Chunk, Error>>> {
        if let Some(chunk) = self.ahead.iter_mut().find_map(Option::take) {
            self.flushed = false;
            return Poll::Ready(Some(chunk));
        }
        if self.expired {
            return Poll::Ready(None);
        }
        if let Some(deadline) = &mut self.deadline {
            let _context = runtime::get().enter();
            if deadline
                .as_mut()
                .poll(&mut Context::from_waker(waker))
                .is_ready()
            {
                // The service's stream is dropped with this body, at the end just after.
                self.expired = true;
                return Poll::Ready(Some(Ok(Chunk::Trailers(deadline_exceeded()))));
            }
        }
        loop {
            // A task reading the request body may be what the response waits for.
            self.pump.answer_waiting(waker);
            let polled = {
                let _context = runtime::get().enter();
                self.body
                    .as_mut()
                    .poll_frame(&mut Context::from_waker(waker))
            };
            let frame = match polled {
                // What was produced so far reaches the client before the wait.
                Poll::Pending if !self.flushed => {
                    self.flushed = true;
                    return Poll::Ready(Some(Ok(Chunk::Flush)));
                }
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Some(Ok(frame))) => frame,
            };
            match frame.into_data() {
                Ok(data) => {
                    self.flushed = false;
                    return Poll::Ready(Some(Ok(Chunk::Data(data))));
                }
                Err(other) => {
                    if let Ok(trailers) = other.into_trailers() {
                        return Poll::Ready(Some(Ok(Chunk::Trailers(fields(&trailers).collect()))));
                    }
                }
            }
        }
    }

    fn waits_for_request_body(&self) -> bool {
        self.pump.waits_for_input()
    }
}

/// Header fields as the SDK's response pairs, values byte-exact (a value with obs-text,
/// bytes above 0x7F, is passed on as it is).
fn fields(headers: &http::HeaderMap) -> impl Iterator<Item = (HeaderText, HeaderBytes)> + '_ {
    headers.iter().map(|(name, value)| {
        (
            HeaderText::from(name.as_str().to_owned()),
            HeaderBytes::from(value.as_bytes().to_vec()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::{encode_path, raw_below_decoded_prefix};

    #[test]
    fn the_mount_point_matches_whatever_spelling_the_client_used() {
        assert_eq!(raw_below_decoded_prefix("/p/items", "/p"), Some("/items"));
        assert_eq!(
            raw_below_decoded_prefix("/%70/items%2525", "/p"),
            Some("/items%2525")
        );
        assert_eq!(raw_below_decoded_prefix("/%70", "/p"), Some(""));
        assert_eq!(raw_below_decoded_prefix("/shop/x", ""), Some("/shop/x"));
        assert_eq!(raw_below_decoded_prefix("/px/items", "/p"), None);
        assert_eq!(raw_below_decoded_prefix("/q/items", "/p"), None);
        assert_eq!(raw_below_decoded_prefix("/%7", "/p"), None);
    }

    #[test]
    fn a_decoded_path_encodes_back_to_one_decode() {
        assert_eq!(encode_path("/a b/%25/é"), "/a%20b/%2525/%C3%A9");
        assert_eq!(encode_path("/items/3"), "/items/3");
    }
}
