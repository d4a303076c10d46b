//! The thin layer over httpd's C API: generated bindings, the C shim, and small safe wrappers
//! (request, server, pool, directive parameters, logging). Raw pointers stay in here; the rest
//! of the module speaks in these wrappers.

#[allow(
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    dead_code,
    unnecessary_transmutes,
    unsafe_op_in_unsafe_fn,
    clippy::all
)]
pub(crate) mod sys {
    include!(concat!(env!("OUT_DIR"), "/httpd_bindings.rs"));
}

mod auth;
mod authn_cache;
mod cmd;
mod entry;
mod log;
mod module;
mod pool;
mod process;
mod request;
mod server;
mod table;

pub(crate) use entry::guard;
pub(crate) use log::{
    ApacheLevel, log_main, log_request, log_server, raise_module_log_level, request_log_scope,
    server_log_scope,
};
pub(crate) use pool::Pool;
pub(crate) use process::{
    Exit, apache_child_user, close_http_listeners, is_exiting, is_serving_start, is_stopping,
    main_server, process_pool, runtime_path, set_process_title, watch_process,
};
pub(crate) use request::{BodyInput, Request};
pub(crate) use server::Server;
