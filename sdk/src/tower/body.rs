//! `rustapp::Body`: the request body as an `http_body::Body`, streamed from the client.
//!
//! Only Apache's thread may read from the client, so the body asks for each piece through a
//! channel and the Apache thread, which drives the request, answers it (see [`Pump`]). That
//! works wherever the body is polled: in the handler, or in a task it spawned.

use std::fmt;
use std::future::{Future, poll_fn};
use std::io::{self, Read};
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::sync::{mpsc, oneshot};

use super::runtime;
use crate::BodyReader;

/// How much of the body one demand reads at most.
const PIECE: usize = 64 * 1024;

/// What one demand is answered with.
enum Piece {
    Data(Bytes),
    /// The end of the body, with the trailers the client sent (often none).
    End(http::HeaderMap),
}

type Answer = io::Result<Piece>;

/// A request for the next piece of body.
pub(crate) struct Demand(oneshot::Sender<Answer>);

/// The request body of a service deployed with `export_service!`.
pub struct Body {
    /// What Apache's thread read before the service was called, handed out first.
    ahead: Option<Bytes>,
    /// The client's trailers, when the body's end was read before the service was called.
    trailers: Option<http::HeaderMap>,
    /// Where the rest comes from; `None` once there is no more.
    source: Option<Source>,
    size_hint: SizeHint,
}

struct Source {
    demands: mpsc::UnboundedSender<Demand>,
    waiting: Option<oneshot::Receiver<Answer>>,
    /// Woken after each demand: the response body, if it waits meanwhile, answers it.
    on_demand: DemandWaker,
}

/// Where a response body that waits leaves its waker for the request body's demands.
pub(crate) type DemandWaker = Arc<Mutex<Option<Waker>>>;

/// Why a request body could not be read: the client sent a malformed body, more than
/// `LimitRequestBody` allows, or went away.
#[derive(Debug)]
pub struct BodyError(io::Error);

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the request body could not be read: {}", self.0)
    }
}

impl std::error::Error for BodyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl Body {
    /// A body with nothing in it.
    pub fn empty() -> Body {
        Body {
            ahead: None,
            trailers: None,
            source: None,
            size_hint: SizeHint::with_exact(0),
        }
    }

    /// A body read whole before the service was called: `data`, then the client's
    /// `trailers`.
    pub(crate) fn read_whole(data: Bytes, trailers: http::HeaderMap) -> Body {
        Body {
            size_hint: SizeHint::with_exact(data.len() as u64),
            ahead: (!data.is_empty()).then_some(data),
            trailers: (!trailers.is_empty()).then_some(trailers),
            source: None,
        }
    }

    /// A body read from Apache through `demands`, after what was read `ahead`; `length`
    /// when the client declared it.
    pub(crate) fn from_apache(
        ahead: Option<Bytes>,
        demands: mpsc::UnboundedSender<Demand>,
        on_demand: DemandWaker,
        length: Option<u64>,
    ) -> Body {
        Body {
            ahead,
            trailers: None,
            source: Some(Source {
                demands,
                waiting: None,
                on_demand,
            }),
            size_hint: length.map_or_else(SizeHint::default, SizeHint::with_exact),
        }
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        if let Some(data) = this.ahead.take() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        let Some(source) = this.source.as_mut() else {
            return Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(t))));
        };
        let waiting = match &mut source.waiting {
            Some(waiting) => waiting,
            empty => {
                let (reply, answer) = oneshot::channel();
                if source.demands.send(Demand(reply)).is_err() {
                    this.source = None;
                    return Poll::Ready(Some(Err(gone())));
                }
                let waiting_body = source.on_demand.lock().ok().and_then(|mut w| w.take());
                if let Some(waker) = waiting_body {
                    waker.wake();
                }
                empty.insert(answer)
            }
        };
        let piece = match Pin::new(waiting).poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(answer) => {
                answer.unwrap_or_else(|_| Err(io::Error::other("the request has ended")))
            }
        };
        source.waiting = None;
        match piece {
            Ok(Piece::Data(bytes)) => Poll::Ready(Some(Ok(Frame::data(bytes)))),
            Ok(Piece::End(trailers)) => {
                this.source = None;
                if trailers.is_empty() {
                    Poll::Ready(None)
                } else {
                    Poll::Ready(Some(Ok(Frame::trailers(trailers))))
                }
            }
            Err(e) => {
                this.source = None;
                Poll::Ready(Some(Err(BodyError(e))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ahead.is_none() && self.trailers.is_none() && self.source.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        self.size_hint
    }
}

fn gone() -> BodyError {
    BodyError(io::Error::other("the request has ended"))
}

/// Answers a body's demands on the thread driving the request, for as long as it lasts.
pub(crate) struct Pump {
    /// `None` for a request without a body.
    demands: Option<mpsc::UnboundedReceiver<Demand>>,
    reader: BodyReader<'static>,
    on_demand: DemandWaker,
    /// A demand that found nothing arrived yet, answered once the host says more came.
    unanswered: Option<Demand>,
}

impl Pump {
    pub(crate) fn new(
        demands: Option<mpsc::UnboundedReceiver<Demand>>,
        reader: BodyReader<'static>,
        on_demand: DemandWaker,
    ) -> Pump {
        Pump {
            demands,
            reader,
            on_demand,
            unanswered: None,
        }
    }

    /// Answers the demands already made with what has arrived, without waiting for the client
    /// where the host allows (else reading waits); `waker` is woken by the next demand.
    pub(crate) fn answer_waiting(&mut self, waker: &Waker) {
        let Some(demands) = &mut self.demands else {
            return;
        };
        if let Ok(mut slot) = self.on_demand.lock() {
            *slot = Some(waker.clone());
        }
        loop {
            let Some(Demand(reply)) = self.unanswered.take().or_else(|| demands.try_recv().ok())
            else {
                return;
            };
            if reply.is_closed() {
                continue; // the body was dropped meanwhile
            }
            match read_piece_now(&mut self.reader) {
                Some(answer) => {
                    let _ = reply.send(answer);
                }
                None => {
                    self.unanswered = Some(Demand(reply));
                    return;
                }
            }
        }
    }

    /// Whether a demand waits for body the client has not sent yet.
    pub(crate) fn waits_for_input(&self) -> bool {
        self.unanswered.is_some()
    }

    /// Runs `future` to its end on this (Apache's) thread, answering the body's demands
    /// meanwhile. What has arrived is handed over at once; when a demand waits for the
    /// client, the thread waits for the client's next bytes (the host's input descriptor) and
    /// for the future's wake-ups together, so the service's other work goes on meanwhile (a
    /// bidirectional stream answers before the client's first message). With a host that
    /// cannot read without waiting, reading blocks Apache's thread, which is what it is for
    /// then.
    pub(crate) fn drive<F: Future>(&mut self, future: F) -> F::Output {
        if self.demands.is_none() {
            return runtime::block_on(future);
        }
        if !self.reader.reads_without_waiting() {
            return runtime::block_on(while_blocking_reads(future, self));
        }
        let input = self.reader.input_fd();
        runtime::block_on_or_input(future, |waker| {
            self.answer_waiting(waker);
            self.waits_for_input().then_some(input).flatten()
        })
    }
}

/// Runs `future` while answering the body's demands with reads that wait for the client.
async fn while_blocking_reads<F: Future>(future: F, pump: &mut Pump) -> F::Output {
    let mut future = pin!(future);
    poll_fn(|cx| {
        if let Poll::Ready(output) = future.as_mut().poll(cx) {
            return Poll::Ready(output);
        }
        let Some(demands) = &mut pump.demands else {
            return Poll::Pending;
        };
        while let Poll::Ready(Some(Demand(reply))) = demands.poll_recv(cx) {
            let _ = reply.send(read_piece(&mut pump.reader));
        }
        Poll::Pending
    })
    .await
}

/// What a request body read before the service is called came to.
pub(crate) enum ReadAhead {
    /// The whole body, then the client's trailers.
    Whole(Bytes, http::HeaderMap),
    /// Its first bytes (maybe none); the rest is still the client's to send.
    Started(Option<Bytes>),
}

/// Reads what of the request body has arrived, without waiting for the client: most bodies
/// (a gRPC call's message, a JSON document) are all there, and a body read whole needs no
/// demands at all.
pub(crate) fn read_ahead(reader: &mut BodyReader<'static>) -> ReadAhead {
    match read_piece_now(reader) {
        Some(Ok(Piece::End(trailers))) => ReadAhead::Whole(Bytes::new(), trailers),
        Some(Ok(Piece::Data(data))) => match read_piece_now(reader) {
            Some(Ok(Piece::End(trailers))) => ReadAhead::Whole(data, trailers),
            Some(Ok(Piece::Data(more))) => {
                let mut both = Vec::with_capacity(data.len() + more.len());
                both.extend_from_slice(&data);
                both.extend_from_slice(&more);
                ReadAhead::Started(Some(both.into()))
            }
            // A failed read fails again when the service reads on.
            None | Some(Err(_)) => ReadAhead::Started(Some(data)),
        },
        None | Some(Err(_)) => ReadAhead::Started(None),
    }
}

fn read_piece(reader: &mut BodyReader<'static>) -> Answer {
    with_scratch(|buf| {
        let n = reader.read(buf)?;
        Ok(piece(reader, &buf[..n]))
    })
}

/// A piece of what has arrived, or `None` when nothing has yet.
fn read_piece_now(reader: &mut BodyReader<'static>) -> Option<Answer> {
    with_scratch(|buf| match reader.read_now(buf) {
        Ok(Some(n)) => Some(Ok(piece(reader, &buf[..n]))),
        Ok(None) => None,
        Err(e) => Some(Err(e)),
    })
}

/// Runs `read` with this thread's read buffer: a piece is copied out of it at the size it
/// came, rather than each read filling a fresh 64 KiB (most bodies are small, and their end is
/// a read of nothing).
fn with_scratch<T>(read: impl FnOnce(&mut [u8]) -> T) -> T {
    thread_local! {
        static SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; PIECE]);
    }
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut buf) => read(&mut buf),
        // Not reentrant in practice; a fresh buffer if it ever is.
        Err(_) => read(&mut vec![0u8; PIECE]),
    })
}

fn piece(reader: &BodyReader<'static>, data: &[u8]) -> Piece {
    if data.is_empty() {
        return Piece::End(trailer_map(reader.trailers()));
    }
    Piece::Data(Bytes::copy_from_slice(data))
}

/// The client's trailers as a header map (fields `http` cannot represent are left out).
fn trailer_map(trailers: Vec<(Vec<u8>, Vec<u8>)>) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    for (name, value) in trailers {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(&name),
            http::HeaderValue::from_bytes(&value),
        ) {
            map.append(name, value);
        }
    }
    map
}
