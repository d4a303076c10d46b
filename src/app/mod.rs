//! The host side of the application ABI (`rustapp::abi`): loading application libraries,
//! creating and calling instances, and the functions the host offers them.

mod embedded_host;
mod exchange;
mod host_table;
mod instance;
mod users;

use std::sync::OnceLock;

pub(crate) use embedded_host::{AppContext, HOST_V1};
pub(crate) use exchange::Exchange;
pub(crate) use host_table::{InstanceContext, RequestState, apache_level, host_table};
pub(crate) use instance::{AppInstance, BodyPiece, Handled, ResponseBody};
pub(crate) use rustapp::loader::load_library;
pub(crate) use users::{StoreAnswer, UserQuestion};

/// Where an alias keeps its application instance in a serving process: empty in Apache's
/// parent, filled once in each child (or the reason it could not be started).
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
