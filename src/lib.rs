//! mod_rustapp: an Apache httpd module that serves Rust web applications built with the
//! `rustapp` SDK, the way mod_wsgi serves Python ones.
//!
//! Layers, each importing only the ones below it (ARCHITECTURE.md has the whole plan):
//! - [`module`]: the module record, directive table, hooks and child life cycle;
//! - [`serve`]: claiming URLs, deciding where an application runs, embedded serving and
//!   authentication; [`daemon`]: daemon groups, their request server and the Apache child's
//!   side of them;
//! - [`respond`]: the one response pipeline (head, body, flushes, aborts) to the client;
//! - [`host`]: the host side of the application ABI, and the rules a response head follows;
//!   [`figures`]: what daemon groups and applications are doing, in memory shared by
//!   Apache's processes and the daemons;
//! - [`config`]: directives parsed once into plain data;
//! - [`ffi`]: the basement, the only code that touches httpd's C API.

// The unit-test binary does not export the module record (it has no httpd to link against),
// so everything reached only from Apache's hooks is dead code there.
#![cfg_attr(test, allow(dead_code))]

mod config;
mod daemon;
mod ffi;
mod figures;
mod host;
mod module;
mod respond;
mod serve;
