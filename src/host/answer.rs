//! Call, check the head, hand over the body: asking an instance for a response is the same
//! sequence in embedded mode and in a daemon; only the request state behind it differs.

use std::fmt;

use super::head::ResponseHead;
use super::host_table::RequestState;
use super::instance::{AppInstance, Handled, ResponseBody};

/// An application's accepted answer.
pub(crate) struct Answer<'i, W> {
    pub(crate) head: ResponseHead,
    /// The body still open in the application; `None` for an empty body or one handed over
    /// whole.
    pub(crate) body: Option<ResponseBody<'i>>,
    /// The body the application handed over whole during the call (ABI 1.5 `set_body`).
    pub(crate) whole: Option<W>,
}

/// Why there is no answer to send.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The instance was stopped (its process is shutting down).
    Stopped,
    /// The application returned an error or panicked (it logged why).
    Failed,
    /// Apache could not read the request body (too large, malformed): its status.
    BodyUnreadable(u16),
    /// The head broke a rule of [`super::head`].
    HeadRefused(String),
}

impl Failure {
    /// The status the client gets.
    pub(crate) fn status(&self) -> u16 {
        match self {
            Failure::Stopped => 503,
            Failure::BodyUnreadable(status) => *status,
            Failure::Failed | Failure::HeadRefused(_) => 500,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Stopped => f.write_str("is shutting down in this process"),
            Failure::Failed => f.write_str("failed to answer (its message precedes this one)"),
            Failure::BodyUnreadable(status) => {
                write!(
                    f,
                    "could not be given its request body (Apache answers {status})"
                )
            }
            Failure::HeadRefused(problem) => {
                write!(f, "sent a response the host refuses: {problem}")
            }
        }
    }
}

/// Asks `app` to answer the request behind `state`.
pub(crate) fn answer<'i, R: RequestState>(
    app: &'i AppInstance,
    state: &R,
) -> Result<Answer<'i, R::WholeBody>, Failure> {
    if !app.takes_upgrades() {
        state.withdraw_upgrade_offer();
    }
    let body = match app.handle(&state.abi_request()) {
        Handled::Answered(body) => body,
        Handled::Stopped => return Err(Failure::Stopped),
        // A body Apache refused to read (too large, malformed) keeps Apache's status.
        Handled::Failed => {
            return Err(state
                .body_failure_status()
                .map_or(Failure::Failed, Failure::BodyUnreadable));
        }
    };
    // Taken here, whatever follows, so that a body handed over after the call is refused.
    let whole = state.take_whole_body();
    match state.finish_head() {
        Ok(head) => Ok(Answer { head, body, whole }),
        Err(problem) => Err(Failure::HeadRefused(problem)), // `body` is closed as it drops
    }
}
