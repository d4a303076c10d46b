//! Generates the `demo.Echo` service's server and client code from its description here (what a
//! `.proto` file would say), so that building needs no protocol-buffer compiler.

use tonic_build::manual::{Builder, Method, Service};

fn method(name: &str, route: &str) -> tonic_build::manual::MethodBuilder {
    Method::builder()
        .name(name)
        .route_name(route)
        .input_type("crate::Note")
        .output_type("crate::Note")
        .codec_path("tonic_prost::ProstCodec")
}

fn main() {
    let echo = Service::builder()
        .name("Echo")
        .package("demo")
        // rpc Say(Note) returns (Note)
        .method(method("say", "Say").build())
        // rpc Count(Note) returns (stream Note)
        .method(method("count", "Count").server_streaming().build())
        // rpc Sum(stream Note) returns (Note)
        .method(method("sum", "Sum").client_streaming().build())
        // rpc Chat(stream Note) returns (stream Note)
        .method(
            method("chat", "Chat")
                .client_streaming()
                .server_streaming()
                .build(),
        )
        .build();
    Builder::new().build_transport(false).compile(&[echo]);
}
