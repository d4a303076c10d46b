//! Middleware with the plain SDK: an application that wraps another is itself an `App`.
//!
//! - [`Site`] dispatches `/api/...` to one application and everything else to another,
//!   handing the inner application the request as if it were mounted at `/api`.
//! - [`PoweredBy`] wraps any application and adds a header to each of its responses.
//!
//! The exported application is `PoweredBy<Site>`.

use rustapp::{App, Error, Request, Response, Settings};

/// Answers below `/api`, reporting where it believes it is mounted.
pub struct Api;

impl App for Api {
    fn start(_settings: &Settings) -> Result<Self, Error> {
        Ok(Api)
    }

    fn handle(&self, request: &mut Request<'_>) -> Result<Response, Error> {
        Ok(Response::text(format!(
            "api: script_name={} path_info={}",
            request.script_name(),
            request.path_info()
        )))
    }
}

/// Answers everything else.
pub struct Pages;

impl App for Pages {
    fn start(_settings: &Settings) -> Result<Self, Error> {
        Ok(Pages)
    }

    fn handle(&self, request: &mut Request<'_>) -> Result<Response, Error> {
        Ok(Response::new(200)
            .with_header("Content-Type", "text/html; charset=utf-8")
            .with_body(format!("<h1>page {}</h1>", request.path_info())))
    }
}

/// Dispatches `/api` and below to [`Api`], the rest to [`Pages`].
pub struct Site {
    api: Api,
    pages: Pages,
}

impl App for Site {
    fn start(settings: &Settings) -> Result<Self, Error> {
        Ok(Site {
            api: Api::start(settings)?,
            pages: Pages::start(settings)?,
        })
    }

    fn handle(&self, request: &mut Request<'_>) -> Result<Response, Error> {
        if let Some(mut below_api) = request.nested("/api") {
            return self.api.handle(&mut below_api);
        }
        self.pages.handle(request)
    }
}

/// Adds `X-Powered-By` (the setting `POWERED_BY`, by default `rustapp`) to every response of
/// the application it wraps.
pub struct PoweredBy<A> {
    inner: A,
    value: String,
}

impl<A: App> App for PoweredBy<A> {
    fn start(settings: &Settings) -> Result<Self, Error> {
        Ok(PoweredBy {
            inner: A::start(settings)?,
            value: settings.get("POWERED_BY").unwrap_or("rustapp").to_owned(),
        })
    }

    fn handle(&self, request: &mut Request<'_>) -> Result<Response, Error> {
        let response = self.inner.handle(request)?;
        Ok(response.with_header("X-Powered-By", self.value.clone()))
    }
}

rustapp::export_app!(PoweredBy<Site>);
