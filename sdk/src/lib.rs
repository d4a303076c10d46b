//! Write web applications that Apache httpd serves through mod_rustapp.
//!
//! An application is a type implementing [`App`]; [`export_app!`] makes the library loadable:
//!
//! ```
//! use rustapp::{App, Error, Request, Response, Settings};
//!
//! struct Hello;
//!
//! impl App for Hello {
//!     fn start(_settings: &Settings) -> Result<Self, Error> {
//!         Ok(Hello)
//!     }
//!     fn handle(&self, _request: &mut Request<'_>) -> Result<Response, Error> {
//!         Ok(Response::text("Hello World!"))
//!     }
//! }
//!
//! rustapp::export_app!(Hello);
//! ```
//!
//! Build it as a `cdylib` and mount it with `RustAppAlias /hello /path/to/libhello.so`.
//! Records logged with the `log` crate go to Apache's error log.
//!
//! # tower and axum
//!
//! With the `tower` feature, any `tower::Service<http::Request<rustapp::Body>>`, an axum
//! `Router` among them, deploys with [`export_service!`]; see the [`tower`] module.
//!
//! # WebSockets and other protocol upgrades
//!
//! axum's `WebSocketUpgrade` works unchanged under [`export_service!`]. A plain application
//! sees the protocols a request offers to switch to with [`Request::upgrade_offer`], takes the
//! connection with [`Request::accept_upgrade`] (a socket it owns), and answers 101 naming one
//! of them, with no body; Apache sends the 101 and relays the client's bytes to and from the
//! socket until either side closes it:
//!
//! ```
//! use std::io::{Read, Write};
//! use rustapp::{App, Error, Request, Response, Settings};
//!
//! struct Echo;
//!
//! impl App for Echo {
//!     fn start(_: &Settings) -> Result<Self, Error> { Ok(Echo) }
//!     fn handle(&self, request: &mut Request<'_>) -> Result<Response, Error> {
//!         if !request.upgrade_offer().is_some_and(|p| p.eq_ignore_ascii_case("echo")) {
//!             return Ok(Response::new(426).with_header("Upgrade", "echo"));
//!         }
//!         let mut socket = request.accept_upgrade()?;
//!         std::thread::spawn(move || {
//!             let mut buf = [0u8; 4096];
//!             while let Ok(n @ 1..) = socket.read(&mut buf) {
//!                 if socket.write_all(&buf[..n]).is_err() { break }
//!             }
//!         });
//!         Ok(Response::new(101).with_header("Upgrade", "echo"))
//!     }
//! }
//!
//! rustapp::export_app!(Echo);
//! ```
//!
//! # Apache's authentication against the application's users
//!
//! With `AuthBasicProvider rustapp` and `Require rustapp-group ...`, Apache checks users against
//! the [`UserStore`] an application returns from [`App::users`]:
//!
//! ```
//! use rustapp::{App, Error, PasswordCheck, Request, Response, Settings, UserStore};
//!
//! struct Site;
//!
//! impl UserStore for Site {
//!     fn check_password(&self, _: &Request<'_>, user: &str, password: &str)
//!         -> Result<PasswordCheck, Error> {
//!         // A real store verifies a salted hash, and spends as long on unknown users.
//!         Ok(match (user, password) {
//!             ("alice", "wonderland") => PasswordCheck::Granted,
//!             ("alice", _) => PasswordCheck::Denied,
//!             _ => PasswordCheck::UnknownUser,
//!         })
//!     }
//!     fn groups_for_user(&self, _: &Request<'_>, user: &str) -> Result<Vec<String>, Error> {
//!         Ok(if user == "alice" { vec!["staff".into()] } else { vec![] })
//!     }
//! }
//!
//! impl App for Site {
//!     fn start(_: &Settings) -> Result<Self, Error> { Ok(Site) }
//!     fn handle(&self, request: &mut Request<'_>) -> Result<Response, Error> {
//!         let user = request.var("REMOTE_USER").unwrap_or("guest");
//!         Ok(Response::text(format!("Hello, {user}!")))
//!     }
//!     fn users(&self) -> Option<&dyn UserStore> { Some(self) }
//! }
//! # rustapp::export_app!(Site);
//! ```
//!
//! # Middleware
//!
//! An application that wraps another is itself an [`App`]: it starts the inner one in its
//! own `start` and calls it from `handle`, changing the request or response on the way.
//! [`Request::nested`] hands part of the URL space to another application as if it were
//! mounted there (examples/composed has both):
//!
//! ```
//! use rustapp::{App, Error, Request, Response, Settings};
//!
//! /// Adds a header to every response of the application it wraps.
//! struct PoweredBy<A>(A);
//!
//! impl<A: App> App for PoweredBy<A> {
//!     fn start(settings: &Settings) -> Result<Self, Error> {
//!         Ok(PoweredBy(A::start(settings)?))
//!     }
//!     fn handle(&self, request: &mut Request<'_>) -> Result<Response, Error> {
//!         Ok(self.0.handle(request)?.with_header("X-Powered-By", "rustapp"))
//!     }
//! }
//!
//! /// Sends `/admin/...` to one application and everything else to another.
//! struct Site<Admin, Main> {
//!     admin: Admin,
//!     main: Main,
//! }
//!
//! impl<Admin: App, Main: App> App for Site<Admin, Main> {
//!     fn start(settings: &Settings) -> Result<Self, Error> {
//!         Ok(Site { admin: Admin::start(settings)?, main: Main::start(settings)? })
//!     }
//!     fn handle(&self, request: &mut Request<'_>) -> Result<Response, Error> {
//!         match request.nested("/admin") {
//!             // Inside, SCRIPT_NAME ends with /admin and PATH_INFO is what follows it.
//!             Some(mut below) => self.admin.handle(&mut below),
//!             None => self.main.handle(request),
//!         }
//!     }
//! }
//! # struct Hello;
//! # impl App for Hello {
//! #     fn start(_: &Settings) -> Result<Self, Error> { Ok(Hello) }
//! #     fn handle(&self, _: &mut Request<'_>) -> Result<Response, Error> { Ok(Response::text("hi")) }
//! # }
//! rustapp::export_app!(PoweredBy<Site<Hello, Hello>>);
//! ```

pub mod abi;
mod app;
mod body_channel;
#[doc(hidden)]
pub mod glue;
mod guard;
#[cfg(feature = "loader")]
pub mod loader;
mod logger;
mod ready;
mod request;
mod response;
mod settings;
#[cfg(feature = "tower")]
pub mod tower;
mod users;

pub use app::{App, Error};
pub use body_channel::{BodySender, Closed};
#[doc(hidden)]
pub use logger::describe_panic;
pub use request::{BodyReader, Request};
pub use response::{Chunk, HeaderBytes, PollBody, Response, ResponseBody};
pub use settings::Settings;
#[cfg(feature = "tower")]
pub use tower::Body;
pub use users::{PasswordCheck, Unsupported, UserStore};

/// Exports `$app` (a type implementing [`App`]) as this library's application.
#[macro_export]
macro_rules! export_app {
    ($app:ty) => {
        /// The mod_rustapp entry point: the application's function table.
        #[unsafe(no_mangle)]
        pub extern "C" fn rustapp_app() -> *const $crate::abi::AppV1 {
            static TABLE: $crate::abi::AppV1 = $crate::glue::table::<$app>(env!("CARGO_PKG_NAME"));
            &TABLE
        }
    };
}
