//! WebSocket routes, written as for any axum server: `WebSocketUpgrade` works unchanged under
//! Apache, embedded and in a daemon group.
//!
//! - `/ws/echo`: sends every text and binary message back (pings are answered by the
//!   library);
//! - `/chat`: a page whose visitors talk to each other through `/chat/ws`. Everyone connected
//!   to the same process shares one room: run the site in a daemon group with one process for
//!   one room across all of Apache's children.

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, Response};
use axum::routing::get;
use serde::Deserialize;
use tokio::sync::broadcast;

/// Messages of the chat room, to everyone in it.
#[derive(Clone)]
struct Room(broadcast::Sender<String>);

/// The largest message echoed (axum's default is 64 MiB as well).
const MAX_MESSAGE: usize = 64 << 20;

pub(crate) fn routes() -> Router {
    let (room, _) = broadcast::channel(64);
    Router::new()
        .route("/ws/echo", get(echo))
        .route("/chat", get(chat_page))
        .route("/chat/ws", get(chat))
        .route("/chat/seen", get(seen))
        .with_state(Room(room))
}

async fn echo(ws: WebSocketUpgrade) -> Response {
    ws.max_message_size(MAX_MESSAGE).on_upgrade(echo_messages)
}

async fn echo_messages(mut socket: WebSocket) {
    while let Some(Ok(message)) = socket.recv().await {
        let reply = match message {
            Message::Text(_) | Message::Binary(_) => message,
            // The library answers a close (and a ping) itself, as the next receive sends
            // what it queued; that receive then ends the loop.
            Message::Close(_) | Message::Ping(_) | Message::Pong(_) => continue,
        };
        if socket.send(reply).await.is_err() {
            return;
        }
    }
}

async fn chat(ws: WebSocketUpgrade, State(room): State<Room>) -> Response {
    ws.on_upgrade(move |socket| talk(socket, room))
}

/// One visitor: what they say goes to the room, what the room hears comes to them.
async fn talk(mut socket: WebSocket, room: Room) {
    let mut heard = room.0.subscribe();
    loop {
        tokio::select! {
            said = socket.recv() => match said {
                Some(Ok(Message::Text(text))) => {
                    let _ = room.0.send(text.to_string());
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
            message = heard.recv() => match message {
                Ok(text) => {
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}

/// What a chat page reports it received.
#[derive(Deserialize)]
struct Seen {
    by: String,
    msg: String,
}

/// Logs what a chat page received, as it arrives: the error log shows it at once, where an
/// HTTP/2 request's access-log line may wait until mod_http2 tidies its stream away.
async fn seen(Query(seen): Query<Seen>) -> StatusCode {
    tracing::info!("chat: {:?} received {:?}", seen.by, seen.msg);
    StatusCode::NO_CONTENT
}

/// The chat page. `?name=` names the visitor. It says hello when it joins, answers each
/// other visitor's hello once, and reports every message it receives to `chat/seen` (so a
/// test can follow two browsers talking in Apache's error log).
async fn chat_page() -> Html<&'static str> {
    Html(
        r#"<!doctype html>
<html><head><meta charset="utf-8"><title>Chat</title></head>
<body><h1>Chat</h1><ol id="messages"></ol>
<form id="say"><input id="text" autocomplete="off"><button>Send</button></form>
<script>
const name = new URLSearchParams(location.search).get("name") || "visitor";
const url = new URL("chat/ws", location.href);
url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
const socket = new WebSocket(url);
const answered = new Set();
socket.onopen = () => socket.send("hello from " + name);
socket.onmessage = (event) => {
  const item = document.createElement("li");
  item.textContent = event.data;
  document.getElementById("messages").append(item);
  fetch("chat/seen?by=" + encodeURIComponent(name) + "&msg=" + encodeURIComponent(event.data));
  const hello = /^hello from (.+)$/.exec(event.data);
  if (hello && hello[1] !== name && !answered.has(hello[1])) {
    answered.add(hello[1]);
    socket.send(name + " answers " + hello[1]);
  }
};
document.getElementById("say").onsubmit = (event) => {
  event.preventDefault();
  socket.send(name + ": " + document.getElementById("text").value);
};
</script></body></html>
"#,
    )
}
