//! mod_rustapp: an Apache httpd module that serves Rust web applications built with the
//! `rustapp` SDK, the way mod_wsgi serves Python ones.
//!
//! How a request travels, top to bottom:
//! - [`config`]: `RustAppAlias` and friends, parsed once into typed values;
//! - [`handler`]: claims the URLs under each alias and streams the application's answer;
//! - [`app`]: the host side of the application ABI (loading, instances, host functions);
//! - [`lifecycle`]: applications start in each child after the fork, stop at its exit;
//! - [`auth`]: Apache's authentication against an application's user store;
//! - [`daemon`]: daemon mode: process groups, their request server, and the Apache child's side;
//! - [`ffi`]: the only code that touches httpd's C API.

// The unit-test binary does not export the module record (it has no httpd to link against),
// so everything reached only from Apache's hooks is dead code there.
#![cfg_attr(test, allow(dead_code))]

mod app;
mod auth;
mod config;
mod daemon;
mod ffi;
mod handler;
mod lifecycle;
mod response_policy;
