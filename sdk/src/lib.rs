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

pub mod abi;
mod app;
#[doc(hidden)]
pub mod glue;
mod logger;
mod request;
mod response;
mod settings;
#[cfg(feature = "tower")]
pub mod tower;

pub use app::{App, Error};
#[doc(hidden)]
pub use logger::describe_panic;
pub use request::{BodyReader, Request};
pub use response::{Chunk, Response, ResponseBody};
pub use settings::Settings;
#[cfg(feature = "tower")]
pub use tower::Body;

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
