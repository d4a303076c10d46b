//! An ordinary axum application, deployed under Apache by the last line of this file.
//!
//! ```text
//! cargo build --release -p axum_site
//! RustAppAlias /site /path/to/target/release/libaxum_site.so setting=SITE_NAME=Demo
//! ```

mod ws;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt;
use rustapp::tower::RequestInfo;
use rustapp::{PasswordCheck, Settings, UserStore};
use serde::{Deserialize, Serialize};
use tower_http::compression::CompressionLayer;
use tower_http::trace::TraceLayer;
use userdb::Store;

/// Shared by every request; built once per process from the alias's settings.
struct Site {
    name: String,
    items: Vec<Item>,
}

#[derive(Clone, Serialize)]
struct Item {
    id: u32,
    name: String,
    price_cents: u32,
}

#[derive(Deserialize)]
struct Search {
    q: String,
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    10
}

#[derive(Deserialize)]
struct StreamParams {
    #[serde(default)]
    chunks: u32,
    #[serde(default)]
    delay_ms: u64,
}

/// The site's WebSocket routes alone, for serving them without Apache (bench/ws-echo).
pub fn websocket_routes() -> Router {
    ws::routes()
}

/// What `rustapp::export_service!` calls once per RustAppAlias in each serving process.
fn make_service(settings: &Settings) -> Result<Router, rustapp::Error> {
    let item_count = settings.parse::<u32>("ITEM_COUNT")?.unwrap_or(25);
    let site = Arc::new(Site {
        name: settings.get("SITE_NAME").unwrap_or("axum site").to_owned(),
        items: (1..=item_count)
            .map(|id| Item {
                id,
                name: format!("item number {id}"),
                price_cents: id * 100,
            })
            .collect(),
    });
    Ok(Router::new()
        .route("/api/site", get(site_info))
        .route("/api/items", get(list_items))
        .route("/api/items/{id}", get(one_item))
        .route("/api/search", get(search))
        .route("/api/echo", post(echo_json))
        .route("/upload", post(count_upload))
        .route("/upload-trailers", post(upload_trailers))
        .route("/stream", get(stream))
        .route("/events", get(events))
        .route("/live", get(live_page))
        .route("/live/seen", get(|| async { StatusCode::NO_CONTENT }))
        .route("/whoami", get(whoami))
        .route("/decoded/{*rest}", get(decoded))
        .route("/header-bytes", get(header_bytes))
        .route("/panic", get(explode))
        .layer(CompressionLayer::new())
        .layer(TraceLayer::new_for_http())
        // Added after the layers, so outside them: the bare hello the benchmarks compare with
        // the plain SDK's, measuring the adapter rather than compression and tracing.
        .route("/", get(|| async { "Hello World!" }))
        .with_state(site)
        .merge(ws::routes()))
}

/// Users for Apache's authentication (`AuthBasicProvider rustapp`, `Require rustapp-group`):
/// the examples' user database (examples/userdb, managed with usersite-admin) that the
/// `USERSITE_DB` setting names. Without the setting
/// the site has no users, and a check against it fails saying so.
struct SiteUsers(Option<Store>);

fn site_users(settings: &Settings) -> Result<SiteUsers, rustapp::Error> {
    let store = settings
        .get("USERSITE_DB")
        .map(|path| Store::open_read_only(std::path::Path::new(path)))
        .transpose()?;
    Ok(SiteUsers(store))
}

impl SiteUsers {
    fn store(&self, asked: &'static str) -> Result<&Store, rustapp::Error> {
        self.0
            .as_ref()
            .ok_or_else(|| Box::new(rustapp::Unsupported(asked)) as rustapp::Error)
    }
}

impl UserStore for SiteUsers {
    fn check_password(
        &self,
        request: &rustapp::Request<'_>,
        user: &str,
        password: &str,
    ) -> Result<PasswordCheck, rustapp::Error> {
        UserStore::check_password(self.store("check_password")?, request, user, password)
    }

    fn groups_for_user(
        &self,
        request: &rustapp::Request<'_>,
        user: &str,
    ) -> Result<Vec<String>, rustapp::Error> {
        UserStore::groups_for_user(self.store("groups_for_user")?, request, user)
    }
}

rustapp::export_service!(make_service, users = site_users);

async fn site_info(State(site): State<Arc<Site>>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "name": site.name, "items": site.items.len() }))
}

async fn list_items(State(site): State<Arc<Site>>) -> Json<Vec<Item>> {
    Json(site.items.clone())
}

async fn one_item(
    State(site): State<Arc<Site>>,
    Path(id): Path<u32>,
) -> Result<Json<Item>, StatusCode> {
    site.items
        .iter()
        .find(|i| i.id == id)
        .cloned()
        .map(Json)
        .ok_or(StatusCode::NOT_FOUND)
}

async fn search(State(site): State<Arc<Site>>, Query(search): Query<Search>) -> Json<Vec<Item>> {
    Json(
        site.items
            .iter()
            .filter(|i| i.name.contains(&search.q))
            .take(search.limit)
            .cloned()
            .collect(),
    )
}

async fn echo_json(Json(value): Json<serde_json::Value>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "received": value }))
}

/// Reads the body as it arrives (never all of it at once) and reports its size and checksum.
async fn count_upload(body: Body) -> Result<String, StatusCode> {
    let mut frames = body.into_data_stream();
    let (mut length, mut checksum) = (0u64, 0u64);
    while let Some(chunk) = frames.next().await {
        let chunk = chunk.map_err(|_| StatusCode::BAD_REQUEST)?;
        checksum = chunk.iter().fold(checksum, |s, &b| {
            s.wrapping_mul(31).wrapping_add(u64::from(b))
        });
        length += chunk.len() as u64;
    }
    Ok(format!("length={length}\nchecksum={checksum}\n"))
}

/// Reads the body frame by frame and reports its size and the client's trailers.
async fn upload_trailers(body: Body) -> Result<String, StatusCode> {
    let mut body = std::pin::pin!(body);
    let (mut length, mut trailers) = (0, Vec::new());
    while let Some(frame) =
        std::future::poll_fn(|cx| axum::body::HttpBody::poll_frame(body.as_mut(), cx)).await
    {
        let frame = frame.map_err(|_| StatusCode::BAD_REQUEST)?;
        match frame.into_data() {
            Ok(data) => length += data.len(),
            Err(frame) => {
                if let Ok(fields) = frame.into_trailers() {
                    trailers.extend(fields.iter().map(|(name, value)| {
                        format!("{name}={}", String::from_utf8_lossy(value.as_bytes()))
                    }));
                }
            }
        }
    }
    Ok(format!(
        "length={length}\ntrailers={}\n",
        trailers.join(",")
    ))
}

/// `chunks` lines, one every `delay_ms`: the client sees each as it is produced.
async fn stream(Query(params): Query<StreamParams>) -> Response {
    let lines = futures_util::stream::iter(0..params.chunks).then(move |i| async move {
        tokio::time::sleep(Duration::from_millis(params.delay_ms)).await;
        Ok::<_, std::io::Error>(format!("line {i}\n"))
    });
    (
        [(header::CONTENT_TYPE, "text/plain")],
        Body::from_stream(lines),
    )
        .into_response()
}

#[derive(Deserialize)]
struct EventParams {
    /// How many events (default: until the client goes away).
    n: Option<u32>,
    /// Milliseconds between events.
    #[serde(default)]
    every_ms: u64,
    /// A directory: event k+1 is sent only once the file `k` appears in it (the tests create
    /// it when they have received event k, so no layer may hold an event back).
    ack: Option<String>,
    /// A file created when the stream is dropped (the response is over, however it ended).
    marker: Option<String>,
}

/// Writes its file when dropped.
struct DropMarker(Option<String>);

impl Drop for DropMarker {
    fn drop(&mut self) {
        if let Some(path) = &self.0 {
            let _ = std::fs::write(path, "dropped");
        }
    }
}

/// Server-sent events: `data: event k`, paced by `every_ms` or by the client's `ack` files.
/// While it waits for the next event, no thread of a daemon is held.
async fn events(Query(params): Query<EventParams>) -> impl IntoResponse {
    let marker = DropMarker(params.marker.clone());
    let stream = futures_util::stream::unfold((0u32, marker), move |(k, marker)| {
        let ack = params.ack.clone();
        async move {
            if params.n.is_some_and(|n| k >= n) {
                return None;
            }
            if k > 0 {
                match &ack {
                    Some(dir) => {
                        let acked = std::path::Path::new(dir).join((k - 1).to_string());
                        while !acked.exists() {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                    None => tokio::time::sleep(Duration::from_millis(params.every_ms)).await,
                }
            }
            let event = Event::default().data(format!("event {k}"));
            Some((Ok::<_, std::convert::Infallible>(event), (k + 1, marker)))
        }
    });
    Sse::new(stream)
}

/// A page that follows `events` with the browser's `EventSource` (which reconnects by itself
/// when a stream ends) and reports each event it sees to `live/seen`, so that the server's
/// access log shows what the browser received.
async fn live_page() -> Html<&'static str> {
    Html(
        r#"<!doctype html>
<html><head><meta charset="utf-8"><title>Live events</title></head>
<body><h1>Live events</h1><ol id="events"></ol>
<script>
let seen = 0;
const source = new EventSource("events?every_ms=300");
source.onmessage = (event) => {
  seen += 1;
  const item = document.createElement("li");
  item.textContent = event.data;
  document.getElementById("events").append(item);
  fetch("live/seen?n=" + seen + "&data=" + encodeURIComponent(event.data));
};
</script></body></html>
"#,
    )
}

/// The rest of the path as axum decoded it: the client's bytes, decoded exactly once.
async fn decoded(Path(rest): Path<String>) -> String {
    rest
}

/// Header bytes that are not UTF-8 (obs-text), both ways: `X-In` comes back as `X-Echo`.
async fn header_bytes(headers: axum::http::HeaderMap) -> impl IntoResponse {
    let got = headers.get("X-In").cloned();
    let mut answer = [(
        axum::http::HeaderName::from_static("x-bytes"),
        axum::http::HeaderValue::from_bytes(b"caf\xe9").expect("obs-text is a valid value"),
    )]
    .into_response();
    if let Some(got) = got {
        answer.headers_mut().insert("x-echo", got);
    }
    answer
}

/// What Apache knows about the request, through `rustapp::tower::RequestInfo`.
async fn whoami(
    Extension(info): Extension<RequestInfo>,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
) -> Json<serde_json::Value> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    Json(serde_json::json!({
        "uri_seen_by_service": uri.to_string(),
        "script_name": info.script_name(),
        "request_uri": info.request_uri(),
        "remote_addr": info.remote_addr().map(|a| a.to_string()),
        "remote_ip": info.remote_ip().map(|a| a.to_string()),
        "remote_user": info.remote_user(),
        "https": info.https(),
        "scheme": info.scheme(),
        "host": info.host(),
        "port": info.port(),
        "host_header": header("host"),
        "x_forwarded_proto": header("x-forwarded-proto"),
        "my_var": info.var("MY_VAR"),
    }))
}

async fn explode() -> &'static str {
    panic!("the axum test asked for a panic")
}
