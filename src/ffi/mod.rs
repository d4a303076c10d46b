//! The basement: the only code that touches httpd's C API. Generated bindings, the C shim, and
//! small safe wrappers (request, server, pool, table, directive context, log sink), plus the
//! shape of a module (record, configuration callbacks, hooks, providers) as the [`Module`]
//! trait. Nothing here uses anything from the crate outside `src/ffi/`; raw pointers to
//! Apache's structures stay in here.

#[allow(
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    dead_code,
    unnecessary_transmutes,
    unsafe_op_in_unsafe_fn,
    clippy::all
)]
mod sys {
    include!(concat!(env!("OUT_DIR"), "/httpd_bindings.rs"));
}

mod auth_answers;
mod auth_provider;
mod authn_cache;
mod cmd;
mod directive;
mod entry;
mod index;
mod log;
mod log_level;
mod module;
mod pool;
mod process;
mod record;
mod request;
mod server;
mod shared_memory;
mod status;
mod table;
mod tunnel;
mod wait;

pub(crate) use auth_answers::{PasswordCheck, RealmHashLookup, RequireCheck};
pub(crate) use authn_cache::{remember_password, remember_realm_hash};
pub(crate) use cmd::{Args, Cmd};
pub(crate) use directive::{CommandTable, Context, END_OF_TABLE, Takes, directive};
pub(crate) use entry::guard;
pub(crate) use log::{
    log_main, log_request, log_server, raise_module_log_level, request_log_scope, server_log_scope,
};
pub(crate) use log_level::ApacheLevel;
pub(crate) use module::{ConfigRecord, Module, ModuleRecord, StatusFlags};
pub(crate) use pool::Pool;
pub(crate) use process::{
    Exit, apache_child_user, close_http_listeners, is_exiting, is_serving_start, is_stopping,
    runtime_path, set_process_title, threads_per_child, watch_process,
};

pub(crate) use request::{BodyInput, ReadNow, Request, ServerVar};
pub(crate) use server::Server;
pub(crate) use shared_memory::{SharedWords, monotonic_us, unmap_shared_memory_but};
pub(crate) use status::{HookStatus, HttpStatus};
pub(crate) use tunnel::{ClientRead, ClientTunnel, send_to_peer};
pub(crate) use wait::{TunnelReady, Woke, wait_readable, wait_tunnel};
