//! `ws-echo serve PORT`: the example site's WebSocket routes (`/ws/echo`, ...) served by
//! hyper through axum, standalone, for the proxy case.
//!
//! `ws-echo load URL CONNECTIONS SECONDS`: that many WebSockets to URL, each sending a
//! 64-byte text message and waiting for its echo before the next, for SECONDS. Prints one
//! line: `messages/s p50_us p99_us failures`.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["serve", port] => serve(port.parse().expect("a port")).await,
        ["load", url, connections, seconds] => {
            load(
                url,
                connections.parse().expect("a connection count"),
                Duration::from_secs(seconds.parse().expect("seconds")),
            )
            .await
        }
        _ => {
            eprintln!("usage: ws-echo serve PORT | ws-echo load URL CONNECTIONS SECONDS");
            std::process::exit(2);
        }
    }
}

async fn serve(port: u16) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind the port");
    axum::serve(listener, axum_site::websocket_routes())
        .await
        .expect("serve");
}

async fn load(url: &str, connections: usize, length: Duration) {
    let message = Message::text("x".repeat(64));
    let mut sockets = Vec::new();
    for _ in 0..connections {
        let (socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("open a WebSocket");
        sockets.push(socket);
    }
    let start = Instant::now();
    let deadline = start + length;
    let runs = sockets.into_iter().map(|mut socket| {
        let message = message.clone();
        tokio::spawn(async move {
            let (mut latencies, mut failures) = (Vec::new(), 0u64);
            while Instant::now() < deadline {
                let sent = Instant::now();
                if socket.send(message.clone()).await.is_err() {
                    failures += 1;
                    break;
                }
                match tokio::time::timeout(Duration::from_secs(10), socket.next()).await {
                    Ok(Some(Ok(echo))) if echo == message => {
                        latencies.push(sent.elapsed().as_micros() as u64)
                    }
                    _ => {
                        failures += 1;
                        break;
                    }
                }
            }
            let _ = socket.close(None).await;
            (latencies, failures)
        })
    });
    let mut latencies = Vec::new();
    let mut failures = 0;
    for run in runs.collect::<Vec<_>>() {
        let (mine, failed) = run.await.expect("a load task");
        latencies.extend(mine);
        failures += failed;
    }
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let percentile = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    println!(
        "{:.0} {} {} {}",
        latencies.len() as f64 / elapsed,
        percentile(0.50),
        percentile(0.99),
        failures
    );
}
