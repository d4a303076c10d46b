//! A daemon's request server.
//!
//! Apache children keep their connections to a daemon open between requests, so a daemon may
//! hold many more connections than it has threads. A connection therefore only occupies a
//! worker while something is to be done on it: idle connections wait in the ready set, where
//! the `threads` workers wait for them; responses that wait for their body or for a slow
//! reader wait on the event loop, which hands them to the workers when they can go on. (A thread per connection would let idle connections and open
//! streams pin every worker and stall the group.)
//!
//! - `event_loop`: accepting, idle connections, waiting responses, switched connections (a
//!   101: the Apache child relays the application's socket, passed to it, until it closes
//!   the connection), and when to stop serving;
//! - `ready`: the event set the workers wait on themselves: idle connections (one-shot, so
//!   that a request goes from its socket to one worker without another thread in between),
//!   and a queue of what the event loop hands over;
//! - `worker`: one turn of a ready connection (greeting, then one request or user query), or
//!   of a waiting response that can go on; `outcome`: what it gives back;
//! - `clock`: the record of calls into application code and their limits;
//! - `answering`: a request or query answered by an application, as frames;
//! - `stream`: a response body pumped into frames, which waits on the event loop when it has
//!   nothing yet or the Apache child reads slowly;
//! - `apps`: the applications this daemon serves, started when first needed;
//! - `recycle`: the policy that retires a process (maximum-requests, inactivity, a replaced
//!   library, a call into the application stuck past its limit).

mod answering;
mod apps;
mod clock;
mod event_loop;
mod outcome;
mod ready;
mod recycle;
mod stream;
mod worker;

use std::time::Duration;

use rustapp_daemon_protocol::{Limits, TOKEN_LEN};

pub(crate) use apps::{DaemonApps, LazyApp};
pub(crate) use event_loop::serve;
pub(crate) use recycle::Recycle;

use super::rolling::RollLock;
use crate::figures::ProcessFigures;

/// How a daemon serves.
#[derive(Clone)]
pub(crate) struct ServeOptions {
    /// Requests served at once.
    pub(crate) threads: usize,
    /// The secret every connection must present first.
    pub(crate) token: [u8; TOKEN_LEN],
    /// The only user (besides root) allowed to connect: Apache's child user.
    pub(crate) allowed_uid: u32,
    pub(crate) limits: Limits,
    /// How long to wait for the Apache child while a request is on the connection.
    pub(crate) socket_timeout: Duration,
    pub(crate) recycle: Recycle,
    /// A request running longer ends this process (its Apache child has answered 504).
    pub(crate) request_timeout: Duration,
    /// A request that waited longer for a worker is answered 503 without running.
    pub(crate) queue_timeout: Duration,
    /// Upgraded connections relayed at once; a request for another is answered 503.
    pub(crate) max_tunnels: usize,
    /// Each worker thread's stack (`None`: Rust's default).
    pub(crate) stack_size: Option<usize>,
    /// The group's turn to retire, taken before retiring for any reason but Apache's restart
    /// or stop (`None` in a group of one process).
    pub(crate) roll_lock: Option<std::sync::Arc<RollLock>>,
    /// Where this process shows what it does (see `figures`).
    pub(crate) figures: ProcessFigures,
}

/// Why `serve` returned: the process retires and its supervisor starts another.
pub(crate) struct Retired {
    pub(crate) reason: String,
    /// When the last request ended before the retirement's limit (graceful-timeout, or
    /// shutdown-timeout when Apache stops): until when the applications may clean up. `None`
    /// when requests were cut off at the limit, so application code may still be running.
    pub(crate) clean_up_until: Option<std::time::Instant>,
}
