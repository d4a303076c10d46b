//! mod_rustapp: an Apache httpd module that serves Rust web applications built with the
//! `rustapp` SDK, the way mod_wsgi serves Python ones.
//!
//! How a request travels, top to bottom:
//! - [`config`]: `RustAppAlias` and friends, parsed once into typed values;
//! - [`handler`]: claims the URLs under each alias and streams the application's answer;
//! - [`app`]: the host side of the application ABI (loading, instances, host functions);
//! - [`lifecycle`]: applications start in each child after the fork, stop at its exit;
//! - [`daemon`]: daemon mode (in progress): the daemon's request server;
//! - [`ffi`]: the only code that touches httpd's C API.

// The unit-test binary does not export the module record (it has no httpd to link against),
// so everything reached only from Apache's hooks is dead code there.
#![cfg_attr(test, allow(dead_code))]

mod app;
mod config;
// The daemon's request server is tested on its own; Apache's process management (forking,
// supervising) and the Apache child's client side come next, and will start it.
#[cfg_attr(not(test), allow(dead_code))]
mod daemon;
mod ffi;
mod handler;
mod lifecycle;
mod response_policy;
