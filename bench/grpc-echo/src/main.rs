//! `grpc-echo serve PORT`: examples/grpc-site's service served standalone by tonic's own server
//! (h2c), for the proxy case.
//!
//! `grpc-echo call URL`: one unary `Say` call with tonic's own client to the service at URL
//! (its path, if any, is the service's mount point), checked: before a path is measured, it
//! shows the path answers gRPC correctly (status in trailers included), which the load
//! generator does not check.

use grpc_site::{EchoClient, EchoServer, EchoService, Note};
use tonic::transport::{Endpoint, Server};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["serve", port] => serve(port.parse().expect("a port")).await,
        ["call", url] => call(url).await,
        _ => {
            eprintln!("usage: grpc-echo serve PORT | grpc-echo call URL");
            std::process::exit(2);
        }
    }
}

async fn serve(port: u16) {
    Server::builder()
        .add_service(EchoServer::new(EchoService))
        .serve(([127, 0, 0, 1], port).into())
        .await
        .expect("serve");
}

async fn call(url: &str) {
    let origin: tonic::codegen::http::Uri = url.parse().expect("a URL");
    let authority = origin.authority().expect("a host and port").to_string();
    let channel = Endpoint::from_shared(format!("http://{authority}"))
        .unwrap()
        .connect()
        .await
        .expect("connect");
    let mut client = EchoClient::with_origin(channel, origin);
    match client.say(Note::new("bench", 1)).await {
        Ok(answer) if answer.get_ref() == &Note::new("hello bench", 1) => println!("ok"),
        other => {
            eprintln!("grpc-echo: {url} answered {other:?}");
            std::process::exit(1);
        }
    }
}
