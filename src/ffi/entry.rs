//! Every `extern "C"` function Apache calls goes through [`guard`]: a panic must never unwind
//! into C (it would abort the whole Apache child and every request on its threads).

use std::panic::{AssertUnwindSafe, catch_unwind};

/// Runs `body`, turning a panic into `on_panic`. The panic hook has already logged it.
pub(crate) fn guard<T>(on_panic: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(on_panic)
}
