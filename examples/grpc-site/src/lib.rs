//! A tonic gRPC service, deployed under Apache by the last line of this file: one call of each
//! kind (unary, server streaming, client streaming, bidirectional).
//!
//! ```text
//! cargo build --release -p grpc_site
//! Protocols h2 h2c http/1.1
//! RustAppAlias / /path/to/target/release/libgrpc_site.so
//! ```
//!
//! gRPC routes by path (`/demo.Echo/Say`), so the service is mounted at `/` of its virtual
//! host. The same code serves standalone with tonic's own server (`bench/`), and the tests
//! call it with tonic's own client.

use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

/// The one message of the service: `message Note { string text = 1; int64 number = 2; }`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Note {
    #[prost(string, tag = "1")]
    pub text: String,
    #[prost(int64, tag = "2")]
    pub number: i64,
}

impl Note {
    pub fn new(text: impl Into<String>, number: i64) -> Note {
        Note {
            text: text.into(),
            number,
        }
    }
}

/// The generated server and client (see `build.rs`).
pub mod demo {
    include!(concat!(env!("OUT_DIR"), "/demo.Echo.rs"));
}

pub use demo::echo_client::EchoClient;
pub use demo::echo_server::{Echo, EchoServer};

/// Server streams dropped before they ended, in this process: a client's cancel shows here
/// (asked for with `Say("dropped:")`).
static STREAMS_DROPPED: AtomicI64 = AtomicI64::new(0);

/// The service's state: none.
#[derive(Clone, Copy, Debug, Default)]
pub struct EchoService;

type NoteStream = Pin<Box<dyn Stream<Item = Result<Note, Status>> + Send>>;

#[tonic::async_trait]
impl Echo for EchoService {
    /// Greets `text`, or (for `fail:why`) fails with INVALID_ARGUMENT, or (for `sleep:ms`)
    /// answers after that long, or (for `dropped:`) tells how many streams were dropped.
    async fn say(&self, request: Request<Note>) -> Result<Response<Note>, Status> {
        let note = request.into_inner();
        let answer = match note.text.split_once(':') {
            Some(("fail", why)) => return Err(Status::invalid_argument(why)),
            Some(("sleep", ms)) => {
                let ms = ms
                    .parse()
                    .map_err(|_| Status::invalid_argument("sleep:MS"))?;
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Note::new("slept", ms as i64)
            }
            Some(("dropped", _)) => Note::new("dropped", STREAMS_DROPPED.load(Ordering::SeqCst)),
            _ => Note::new(format!("hello {}", note.text), note.number),
        };
        Ok(Response::new(answer))
    }

    type CountStream = NoteStream;

    /// Counts from 1 to `number`, at once; with `number` 0, without end, one every 5 ms.
    async fn count(&self, request: Request<Note>) -> Result<Response<NoteStream>, Status> {
        let last = request.into_inner().number;
        let numbers = Numbers {
            next: 1,
            last: (last > 0).then_some(last),
            tick: (last <= 0).then(|| tokio::time::interval(Duration::from_millis(5))),
            finished: false,
        };
        Ok(Response::new(Box::pin(numbers)))
    }

    /// Adds up the numbers of every note sent.
    async fn sum(&self, request: Request<Streaming<Note>>) -> Result<Response<Note>, Status> {
        let mut notes = request.into_inner();
        let (mut total, mut count) = (0, 0);
        while let Some(note) = notes.message().await? {
            total += note.number;
            count += 1;
        }
        Ok(Response::new(Note::new(format!("{count} notes"), total)))
    }

    type ChatStream = NoteStream;

    /// Says `ready` first, then echoes each note as it arrives; `push:N` makes another task
    /// send N notes while this one waits for the client's next (both directions at once).
    async fn chat(
        &self,
        request: Request<Streaming<Note>>,
    ) -> Result<Response<NoteStream>, Status> {
        let mut inbound = request.into_inner();
        let (out, answers) = mpsc::channel(16);
        tokio::spawn(async move {
            if out.send(Ok(Note::new("ready", 0))).await.is_err() {
                return;
            }
            while let Some(Ok(note)) = inbound.next().await {
                if let Some(("push", n)) = note.text.split_once(':') {
                    let pushes = out.clone();
                    let n: i64 = n.parse().unwrap_or(0);
                    tokio::spawn(async move {
                        for i in 1..=n {
                            let _ = pushes.send(Ok(Note::new("pushed", i))).await;
                        }
                    });
                } else {
                    let echo = Note::new(format!("echo {}", note.text), note.number);
                    if out.send(Ok(echo)).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(answers))))
    }
}

/// The server stream of `Count`; dropped before its end, it counts in `STREAMS_DROPPED`.
struct Numbers {
    next: i64,
    last: Option<i64>,
    tick: Option<tokio::time::Interval>,
    finished: bool,
}

impl Stream for Numbers {
    type Item = Result<Note, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.last.is_some_and(|last| self.next > last) {
            self.finished = true;
            return Poll::Ready(None);
        }
        if let Some(tick) = &mut self.tick {
            if tick.poll_tick(cx).is_pending() {
                return Poll::Pending;
            }
        }
        let n = self.next;
        self.next += 1;
        Poll::Ready(Some(Ok(Note::new(n.to_string(), n))))
    }
}

impl Drop for Numbers {
    fn drop(&mut self) {
        if !self.finished {
            STREAMS_DROPPED.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// What `rustapp::export_service!` calls once per RustAppAlias in each serving process.
pub fn make_service(_: &rustapp::Settings) -> Result<EchoServer<EchoService>, rustapp::Error> {
    Ok(EchoServer::new(EchoService))
}

rustapp::export_service!(make_service);
