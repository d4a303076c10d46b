//! The SDK's tokio runtime, one per serving process.

use std::sync::OnceLock;

use tokio::runtime::Runtime;

use crate::{Error, Settings};

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// Most CPUs a process's workers use by default: request futures run on Apache's threads.
const DEFAULT_MAX_WORKERS: usize = 4;

/// Creates the runtime on first use, sized by the first instance's settings.
pub(crate) fn start(settings: &Settings) -> Result<&'static Runtime, Error> {
    if let Some(runtime) = RUNTIME.get() {
        return Ok(runtime);
    }
    let workers = match settings.parse::<usize>("rustapp.worker_threads")? {
        Some(0) => return Err("the setting rustapp.worker_threads must be at least 1".into()),
        Some(n) => n,
        None => std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(DEFAULT_MAX_WORKERS),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("rustapp-worker")
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    log::debug!("rustapp: async runtime started with {workers} worker threads");
    Ok(RUNTIME.get_or_init(|| runtime))
}

/// The runtime, once `start` has run in this process.
pub(crate) fn get() -> &'static Runtime {
    RUNTIME
        .get()
        .expect("the runtime starts with the first instance")
}
