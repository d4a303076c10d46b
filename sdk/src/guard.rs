//! Every `extern "C"` function the host calls, and every callback the SDK hands the host, runs
//! inside these: a panic must never unwind into the host, where it would abort the whole
//! Apache child and every request on its threads.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

/// Runs `body`, turning a panic (the panic hook has reported it) into `on_panic`.
pub(crate) fn guard<T>(on_panic: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(on_panic)
}

/// A panic caught inside a callback the host calls back into (a header visitor), carried over
/// the host and raised again once the host returns, on the application's side: there the
/// entry point's own guard turns it into a failed request.
#[derive(Default)]
pub(crate) struct CarriedPanic(Option<Box<dyn Any + Send>>);

impl CarriedPanic {
    /// Runs `body` unless an earlier call panicked; keeps its panic.
    pub(crate) fn run(&mut self, body: impl FnOnce()) {
        if self.0.is_none() {
            if let Err(panic) = catch_unwind(AssertUnwindSafe(body)) {
                self.0 = Some(panic);
            }
        }
    }

    /// Raises the carried panic again, if there is one.
    pub(crate) fn resume(self) {
        if let Some(panic) = self.0 {
            resume_unwind(panic);
        }
    }
}
