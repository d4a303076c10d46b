use crate::{Request, Response, Settings, UserStore};

/// Any error an application returns; it becomes a 500 and a line in Apache's error log.
pub type Error = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A web application. Apache creates one instance per `RustAppAlias` in each process that serves
/// it and calls [`App::handle`] from many threads at once.
pub trait App: Send + Sync + 'static {
    /// Creates an instance with the settings of its `RustAppAlias` and virtual host. An error
    /// is logged, and the alias answers 500 until the process is replaced.
    fn start(settings: &Settings) -> Result<Self, Error>
    where
        Self: Sized;

    /// Answers one request. An error or a panic becomes a 500 for this request only.
    fn handle(&self, request: &mut Request<'_>) -> Result<Response, Error>;

    /// The application's users and groups, if Apache may authenticate against them
    /// (`AuthBasicProvider rustapp`, `Require rustapp-group`). The default has none.
    fn users(&self) -> Option<&dyn UserStore> {
        None
    }
}
