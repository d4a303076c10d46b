//! A response body fed from anywhere: server-sent events, long polls, progress reports. The
//! application keeps the [`BodySender`] (it can be moved to another thread or task) and sends
//! chunks as they happen; while nothing is queued, the body waits without holding a thread of
//! a daemon.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Poll, Waker};

use bytes::Bytes;

use crate::response::PollBody;
use crate::{Chunk, Error, ResponseBody};

/// The sending side of [`crate::ResponseBody::channel`]. The body ends when the last sender
/// is dropped.
pub struct BodySender {
    shared: Arc<Mutex<State>>,
}

/// The response is over (the client went away, or the response failed): nothing sent is read.
#[derive(Debug)]
pub struct Closed;

impl std::fmt::Display for Closed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the response body is closed: the client went away or the response ended")
    }
}

impl std::error::Error for Closed {}

#[derive(Default)]
struct State {
    queue: VecDeque<Chunk>,
    senders: usize,
    body_gone: bool,
    waker: Option<Waker>,
}

fn lock(shared: &Mutex<State>) -> MutexGuard<'_, State> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

impl BodySender {
    /// Queues `chunk`. Never blocks; `Err(Closed)` once the response is over.
    pub fn send(&self, chunk: Chunk) -> Result<(), Closed> {
        let mut state = lock(&self.shared);
        if state.body_gone {
            return Err(Closed);
        }
        state.queue.push_back(chunk);
        if let Some(waker) = state.waker.take() {
            waker.wake();
        }
        Ok(())
    }

    /// Queues `data` followed by a flush, so that it reaches the client at once (an event).
    pub fn send_now(&self, data: impl Into<Bytes>) -> Result<(), Closed> {
        self.send(Chunk::Data(data.into()))?;
        self.send(Chunk::Flush)
    }

    /// Whether the response is over (the client went away).
    pub fn is_closed(&self) -> bool {
        lock(&self.shared).body_gone
    }

    /// How many chunks wait to be sent (a client reading slowly makes this grow).
    pub fn queued(&self) -> usize {
        lock(&self.shared).queue.len()
    }
}

impl Clone for BodySender {
    fn clone(&self) -> BodySender {
        lock(&self.shared).senders += 1;
        BodySender {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for BodySender {
    fn drop(&mut self) {
        let mut state = lock(&self.shared);
        state.senders -= 1;
        if state.senders == 0 {
            if let Some(waker) = state.waker.take() {
                waker.wake();
            }
        }
    }
}

/// The body's side.
struct ChannelBody {
    shared: Arc<Mutex<State>>,
}

impl PollBody for ChannelBody {
    fn poll_next(&mut self, waker: &Waker) -> Poll<Option<Result<Chunk, Error>>> {
        let mut state = lock(&self.shared);
        if let Some(chunk) = state.queue.pop_front() {
            return Poll::Ready(Some(Ok(chunk)));
        }
        if state.senders == 0 {
            return Poll::Ready(None);
        }
        state.waker = Some(waker.clone());
        Poll::Pending
    }
}

impl Drop for ChannelBody {
    fn drop(&mut self) {
        let mut state = lock(&self.shared);
        state.body_gone = true;
        state.queue.clear();
    }
}

impl ResponseBody {
    /// A body fed through the returned sender, from any thread, as things happen (events,
    /// long polls). It ends when the last sender is dropped; a send fails once the client has
    /// gone away.
    pub fn channel() -> (BodySender, ResponseBody) {
        let (sender, body) = channel();
        (sender, ResponseBody::Polled(body))
    }
}

/// A sender and the body it feeds.
fn channel() -> (BodySender, Box<dyn PollBody>) {
    let shared = Arc::new(Mutex::new(State {
        senders: 1,
        ..State::default()
    }));
    let body = ChannelBody {
        shared: shared.clone(),
    };
    (BodySender { shared }, Box::new(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_arrive_in_order_and_the_body_ends_with_the_last_sender() {
        let (sender, mut body) = channel();
        let waker = Waker::noop();
        assert!(body.poll_next(waker).is_pending());
        let second = sender.clone();
        sender.send_now("a").unwrap();
        drop(sender);
        second.send(Chunk::Data(Bytes::from_static(b"b"))).unwrap();
        let mut seen = Vec::new();
        while let Poll::Ready(Some(Ok(chunk))) = body.poll_next(waker) {
            seen.push(format!("{chunk:?}"));
        }
        assert_eq!(seen.len(), 3, "{seen:?}");
        assert!(body.poll_next(waker).is_pending(), "a sender is left");
        drop(second);
        assert!(matches!(body.poll_next(waker), Poll::Ready(None)));
    }

    #[test]
    fn senders_learn_that_the_client_went_away() {
        let (sender, body) = channel();
        assert!(!sender.is_closed());
        drop(body);
        assert!(sender.is_closed());
        assert!(sender.send(Chunk::Flush).is_err());
    }
}
