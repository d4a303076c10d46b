//! The smallest mod_rustapp application: answers every request with `Hello World!`.
//!
//! ```text
//! cargo build --release -p hello
//! RustAppAlias /hello /path/to/target/release/libhello.so
//! ```

use rustapp::{App, Error, Request, Response, Settings};

struct Hello;

impl App for Hello {
    fn start(_settings: &Settings) -> Result<Self, Error> {
        Ok(Hello)
    }

    fn handle(&self, _request: &mut Request<'_>) -> Result<Response, Error> {
        Ok(Response::new(200)
            .with_header("Content-Type", "text/plain")
            .with_body("Hello World!"))
    }
}

rustapp::export_app!(Hello);
