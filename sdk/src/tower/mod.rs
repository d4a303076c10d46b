//! Deploy any `tower::Service<http::Request<rustapp::Body>>` (an axum `Router`, a tower-http
//! stack, ...) under Apache with one macro:
//!
//! ```text
//! fn make_service(settings: &rustapp::Settings) -> Result<axum::Router, rustapp::Error> {
//!     Ok(axum::Router::new().route("/", axum::routing::get(|| async { "Hello World!" })))
//! }
//! rustapp::export_service!(make_service);
//! ```
//!
//! How a request runs: Apache's thread builds an `http::Request` (headers copied, the body
//! streamed from the client on demand) and drives the service's future itself on the SDK's
//! tokio runtime (`block_on`), so a handler that finishes quickly costs no thread hop. Tasks
//! the service spawns run on the runtime's worker threads. The response body is sent frame by
//! frame as it is produced: Apache pushes what it has to the client whenever the next frame is
//! not ready yet, and pulls the next frame only when the previous one is written.
//!
//! A request that offers an upgrade (WebSocket) is served through hyper's HTTP/1 server
//! instead, so that axum's `WebSocketUpgrade` finds the `OnUpgrade` it needs; once the
//! service answers 101, the upgraded connection is the socket Apache hands over.
//!
//! The runtime is created in the process that serves requests (an Apache child or a daemon),
//! on the first instance's start, never in Apache's parent. Its worker thread count is the
//! setting `rustapp.worker_threads`, by default the number of CPUs up to 4: request futures run
//! on Apache's own threads, the workers only run spawned tasks and timers.

mod body;
mod deadline;
mod erased;
mod info;
mod runtime;
mod service_app;
mod upgrade;

pub use body::{Body, BodyError};
pub use info::RequestInfo;
pub use service_app::ServiceApp;

/// Exports a tower service as this library's application. `$make` is a function
/// `fn(&rustapp::Settings) -> Result<S, E>` where `S` is a `Clone + Send + Sync` service over
/// `http::Request<rustapp::Body>` (an axum `Router` is one) and `E` converts into
/// [`crate::Error`]. It runs once per `RustAppAlias` in each serving process.
///
/// `export_service!(make, users = make_users)` also gives Apache's authentication a user
/// store: `make_users` is a function `fn(&rustapp::Settings) -> Result<U, E>` where `U`
/// implements [`crate::UserStore`].
#[macro_export]
macro_rules! export_service {
    ($make:path) => {
        $crate::export_service!(@app $make, |app: $crate::tower::ServiceApp, _: &$crate::Settings| {
            ::std::result::Result::<_, $crate::Error>::Ok(app)
        });
    };
    ($make:path, users = $users:path) => {
        $crate::export_service!(@app $make, |app: $crate::tower::ServiceApp, settings: &$crate::Settings| {
            app.with_users(settings, $users)
        });
    };
    (@app $make:path, $finish:expr) => {
        struct __RustAppService($crate::tower::ServiceApp);

        impl $crate::App for __RustAppService {
            fn start(settings: &$crate::Settings) -> ::std::result::Result<Self, $crate::Error> {
                let app = $crate::tower::ServiceApp::start(settings, $make)?;
                ($finish)(app, settings).map(__RustAppService)
            }

            fn handle(
                &self,
                request: &mut $crate::Request<'_>,
            ) -> ::std::result::Result<$crate::Response, $crate::Error> {
                self.0.handle(request)
            }

            fn users(&self) -> ::std::option::Option<&dyn $crate::UserStore> {
                self.0.users()
            }
        }

        $crate::export_app!(__RustAppService);
    };
}
