//! Where a serving process keeps one application's instance.

use std::sync::OnceLock;

use super::instance::AppInstance;

/// Empty until the process starts the application, then its instance or why it could not be
/// started.
#[derive(Default)]
pub(crate) struct AppSlot(OnceLock<Result<AppInstance, String>>);

impl AppSlot {
    /// Starts the application if this process has not yet.
    pub(crate) fn start_once(&self, start: impl FnOnce() -> Result<AppInstance, String>) {
        self.0.get_or_init(start);
    }

    /// The running instance, or why there is none.
    pub(crate) fn get(&self) -> Result<&AppInstance, &str> {
        match self.0.get() {
            Some(Ok(app)) => Ok(app),
            Some(Err(reason)) => Err(reason),
            None => Err("it was not started in this process"),
        }
    }

    /// Destroys the instance at process shutdown.
    pub(crate) fn stop(&self) {
        if let Some(Ok(app)) = self.0.get() {
            app.stop();
        }
    }
}
