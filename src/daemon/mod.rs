//! Daemon mode: applications served in processes of their own, reached over a UNIX socket with
//! the protocol in `rustapp_daemon_protocol`.
//!
//! Built so far: the daemon's request server ([`server`]), which serves the protocol to
//! application instances through its own implementation of the application ABI's host
//! functions ([`host`]). Still to come: forking and supervising daemon processes from Apache's
//! parent, and the Apache child's side of the connection.

mod connection;
mod host;
mod server;
#[cfg(test)]
mod tests;

// The server is exercised by its tests; Apache's process management starts it in a later step.
#[allow(unused_imports)]
pub(crate) use server::{Registry, ServerConfig, serve};
