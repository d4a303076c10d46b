//! Daemon mode: applications served in processes of their own, reached over a UNIX socket with
//! the protocol in `rustapp_daemon_protocol`.
//!
//! - `supervisor`: in Apache's parent, each group's socket and processes, replaced when they die;
//! - `process`: a daemon becoming its group's user and serving;
//! - `rolling`: a group's processes retiring one at a time, each replacement serving first;
//! - `elastic`: an elastic group's spare processes, which join when the load needs them;
//! - `os`: every operating-system call daemon mode makes (the only `unsafe` here);
//! - `server`: the daemon's request server (event loop, workers, recycling, its applications);
//! - `request_state`: the host functions an application in a daemon calls, over frames;
//! - `runtime`: what the parent sets up per generation and its children inherit;
//! - `client`: in Apache's children, sending a request to a group and relaying the answer;
//! - `request_body`: in Apache's children, answering a daemon's reads of the request body;
//! - `spool`: in Apache's children, a request body read whole before the daemon is asked;
//! - `connection`: one connection, frames in and out.

mod client;
mod connection;
mod elastic;
mod os;
mod process;
mod request_body;
mod request_state;
mod rolling;
mod runtime;
mod server;
mod spool;
mod supervisor;
#[cfg(test)]
mod tests;

pub(crate) use client::{ask_via_daemon, serve_via_daemon};
pub(crate) use runtime::{DaemonRuntime, GroupRuntime};
pub(crate) use supervisor::start;
