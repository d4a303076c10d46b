//! The request path: claim the URLs under each `RustAppAlias`, then let the application answer
//! and stream its body to the client.

use std::ffi::{CStr, c_int};

use crate::app::{AppInstance, BodyPiece, Exchange, Handled, ResponseBody};
use crate::config::{Alias, DirConfig, ServerConfig};
use crate::daemon::{DaemonRuntime, GroupRuntime, serve_via_daemon};
use crate::ffi::{Request, main_server, request_log_scope, sys};

/// `r->handler` of requests routed to an application.
const HANDLER_NAME: &CStr = c"rustapp";

const OK: c_int = sys::OK;
const DECLINED: c_int = sys::DECLINED;
const INTERNAL_SERVER_ERROR: c_int = sys::HTTP_INTERNAL_SERVER_ERROR;
const SERVICE_UNAVAILABLE: c_int = sys::HTTP_SERVICE_UNAVAILABLE;

/// `translate_name`: a URL at or below a mount point belongs to that alias's application.
pub(crate) fn translate_name(request: Request<'_>) -> c_int {
    if request.is_proxy_request() {
        return DECLINED;
    }
    let Some(config) = request.server().module_config::<ServerConfig>() else {
        return DECLINED;
    };
    let Some((alias, path_info_at)) = config.route(request.path()) else {
        return DECLINED;
    };
    request.set_module_request_data::<Alias>(alias);
    request.set_handler(HANDLER_NAME);
    request.set_target(&alias.library_c, path_info_at);
    OK
}

/// `map_to_storage`: an application's URLs are not files, so `<Directory>` sections of the
/// library's folder do not apply to them (`<Location>` sections do), as with mod_proxy.
pub(crate) fn map_to_storage(request: Request<'_>) -> c_int {
    if request.module_request_data::<Alias>().is_some() {
        OK
    } else {
        DECLINED
    }
}

/// `handler`: runs the application for requests `translate_name` claimed.
pub(crate) fn handle(request: Request<'_>) -> c_int {
    if request.handler() != Some(HANDLER_NAME) {
        return DECLINED;
    }
    let _scope = request_log_scope(request);
    let Some(alias) = request.module_request_data::<Alias>() else {
        log::error!(
            "SetHandler rustapp is set for a URL no RustAppAlias covers; mount the application with RustAppAlias instead"
        );
        return INTERNAL_SERVER_ERROR;
    };
    let dir = request.module_dir_config::<DirConfig>();
    let pass_authorization = dir.is_some_and(DirConfig::passes_authorization);
    // The alias line's process-group= wins over RustAppProcessGroup.
    let group = alias
        .process_group
        .as_deref()
        .or_else(|| dir.and_then(|d| d.process_group.as_deref()));
    // The type mod_mime guessed from the library's file name is not the application's.
    request.clear_content_type();
    let exchange = Exchange::new(request, alias.mount.script_name(), pass_authorization);
    match group {
        Some(group) => serve_in_group(&exchange, alias, group),
        None => serve_embedded(&exchange, alias),
    }
}

fn serve_in_group(exchange: &Exchange<'_>, alias: &Alias, group: &str) -> c_int {
    match daemon_group(group) {
        Some((runtime, group)) => serve_via_daemon(exchange, alias, runtime, group),
        None => {
            log::error!(
                "{alias} should run in daemon group '{group}', which no RustAppDaemonProcess defines; answering 500"
            );
            INTERNAL_SERVER_ERROR
        }
    }
}

/// This generation's daemon runtime and its group `name`, if one is defined.
pub(crate) fn daemon_group(name: &str) -> Option<(&'static DaemonRuntime, &'static GroupRuntime)> {
    let runtime = main_server()?
        .module_config::<ServerConfig>()?
        .daemons
        .get()?;
    Some((runtime, runtime.group(name)?))
}

/// Whether `RustAppRestrictEmbedded On` forbids running applications inside Apache for the
/// request's server.
pub(crate) fn embedding_forbidden(request: Request<'_>) -> bool {
    request
        .server()
        .module_config::<ServerConfig>()
        .is_some_and(|c| c.restrict_embedded == Some(true))
}

fn serve_embedded(exchange: &Exchange<'_>, alias: &Alias) -> c_int {
    if embedding_forbidden(exchange.request()) {
        log::error!(
            "{alias} has no daemon process group and RustAppRestrictEmbedded On forbids running it inside Apache; give it one with RustAppProcessGroup or process-group=; answering 500"
        );
        return INTERNAL_SERVER_ERROR;
    }
    match alias.app.get() {
        Ok(app) => serve(exchange, alias, app),
        Err(reason) => {
            log::error!("{alias} cannot serve: {reason}");
            INTERNAL_SERVER_ERROR
        }
    }
}

fn serve(exchange: &Exchange<'_>, alias: &Alias, app: &AppInstance) -> c_int {
    let body = match app.handle(&exchange.abi_request()) {
        Handled::Answered(body) => body,
        Handled::Stopped => {
            log::warn!("{alias} is shutting down in this process; answering 503");
            return SERVICE_UNAVAILABLE;
        }
        Handled::Failed => {
            // A body Apache refused to read (too large, malformed) keeps Apache's status.
            if let Some(status) = exchange.body_failure_status() {
                return c_int::from(status);
            }
            log::error!("{alias} failed to answer (its message precedes this one); answering 500");
            return INTERNAL_SERVER_ERROR;
        }
    };
    let head = match exchange.finish_head() {
        Ok(head) => head,
        Err(problem) => {
            log::error!("{alias} sent a response Apache refuses: {problem}; answering 500");
            return INTERNAL_SERVER_ERROR; // `body` is closed as it drops
        }
    };
    let request = exchange.request();
    request.set_status(head.status);
    if let Some(mut body) = body {
        if !request.is_head() {
            send_body(request, alias, &mut body, head.content_length);
        }
    }
    OK
}

/// Streams the body to the client, holding it to a declared `Content-Length`. A body that
/// breaks off reaches the client as an aborted response, never as a clean end.
/// Where a response body comes from: an embedded instance or a daemon.
pub(crate) trait BodySource {
    fn next_piece(&mut self) -> BodyPiece<'_>;
}

impl BodySource for ResponseBody<'_> {
    fn next_piece(&mut self) -> BodyPiece<'_> {
        self.next()
    }
}

pub(crate) fn send_body(
    request: Request<'_>,
    alias: &Alias,
    body: &mut impl BodySource,
    declared: Option<u64>,
) {
    let mut sent: u64 = 0;
    loop {
        match body.next_piece() {
            BodyPiece::Data(bytes) => {
                let room = declared.map_or(u64::MAX, |limit| limit - sent);
                let overflow = bytes.len() as u64 > room;
                let bytes = if overflow {
                    &bytes[..room as usize]
                } else {
                    bytes
                };
                if request.write(bytes).is_err() {
                    log::debug!("the client went away after {sent} bytes of the response");
                    return;
                }
                sent += bytes.len() as u64;
                if overflow {
                    log::error!(
                        "{alias} sent more than its Content-Length of {}; the excess was dropped",
                        declared.unwrap_or_default()
                    );
                    return;
                }
            }
            BodyPiece::Flush => {
                if request.flush().is_err() {
                    log::debug!("the client went away after {sent} bytes of the response");
                    return;
                }
            }
            BodyPiece::End => {
                if let Some(limit) = declared.filter(|&limit| sent < limit) {
                    log::error!(
                        "{alias} ended its body after {sent} of the {limit} bytes its Content-Length promised; the response was aborted"
                    );
                    request.abort_response();
                }
                return;
            }
            BodyPiece::Failed => {
                log::error!(
                    "{alias} failed while producing its body, after {sent} bytes; the response was aborted"
                );
                request.abort_response();
                return;
            }
        }
    }
}
