//! Daemon mode: applications served in processes of their own, reached over a UNIX socket with
//! the protocol in `rustapp_daemon_protocol`.
//!
//! - `supervisor`: in Apache's parent, each group's socket and processes, replaced when they die;
//! - `process`: a daemon becoming its group's user and serving;
//! - `os`: every operating-system call daemon mode makes (the only `unsafe` here);
//! - `server`, `host`: the daemon's request server and its host functions for applications;
//! - `client`: in Apache's children, sending a request to a group and relaying the answer.

mod client;
mod connection;
mod host;
mod os;
mod process;
mod runtime;
mod server;
mod supervisor;
#[cfg(test)]
mod tests;

pub(crate) use client::{ask_via_daemon, serve_via_daemon};
pub(crate) use runtime::{DaemonRuntime, GroupRuntime};
pub(crate) use supervisor::start;
