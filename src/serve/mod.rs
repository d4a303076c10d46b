//! Serving a request: claim the URLs under each `RustAppAlias`, decide where the application
//! runs, and let it answer there (embedded, or through its daemon group). Authentication asks
//! the application's user store the same way.

mod auth;
mod embedded;
mod figures_pages;
mod placement;
mod registry;

use std::ffi::CStr;

pub(crate) use auth::{check_groups, check_password, realm_hash, required_groups};
pub(crate) use figures_pages::status_section;
pub(crate) use registry::{Generation, Registry};

use crate::config::{Alias, DirConfig, ServerConfig};
use crate::daemon::serve_via_daemon;
use crate::ffi::{HookStatus, HttpStatus, Request, request_log_scope, threads_per_child};
use crate::figures::{AliasFigures, GroupFigures};
use crate::host::Exchange;
use crate::respond::{Delivery, TunnelSlot};
use placement::{EmbeddingForbidden, Placement, placement};

/// `r->handler` of requests routed to an application.
const HANDLER_NAME: &CStr = c"rustapp";

/// `translate_name`: a URL at or below a mount point belongs to that alias's application.
pub(crate) fn translate_name(request: Request<'_>) -> HookStatus {
    if request.is_proxy_request() {
        return HookStatus::Declined;
    }
    let Some(config) = request.server().module_config::<ServerConfig>() else {
        return HookStatus::Declined;
    };
    let Some((alias, path_info_at)) = config.route(request.path()) else {
        return HookStatus::Declined;
    };
    request.set_module_request_data::<Alias>(alias);
    request.set_handler(HANDLER_NAME);
    request.set_target(&alias.library_c, path_info_at);
    HookStatus::Ok
}

/// `map_to_storage`: an application's URLs are not files, so `<Directory>` sections of the
/// library's folder do not apply to them (`<Location>` sections do), as with mod_proxy.
pub(crate) fn map_to_storage(request: Request<'_>) -> HookStatus {
    if request.module_request_data::<Alias>().is_some() {
        HookStatus::Ok
    } else {
        HookStatus::Declined
    }
}

/// `handler`: runs the application for requests `translate_name` claimed.
/// A tunnel slot of this Apache child for a request offering an upgrade, or `None` (logged)
/// when `RustAppMaxTunnels` are open already.
fn reserve_tunnel(request: Request<'_>, alias: &Alias) -> Option<TunnelSlot> {
    let limit = request
        .server()
        .module_config::<ServerConfig>()
        .map_or(1, |config| config.max_tunnels(threads_per_child()));
    let slot = TunnelSlot::reserve(limit);
    if slot.is_none() {
        log::error!(
            "{alias}: this Apache child relays {} upgraded connections already, its RustAppMaxTunnels limit of {limit}; answering 503 (raise RustAppMaxTunnels and ThreadsPerChild together)",
            TunnelSlot::open()
        );
    }
    slot
}

pub(crate) fn handle(request: Request<'_>) -> HookStatus {
    if request.handler() == Some(figures_pages::METRICS_HANDLER) {
        return figures_pages::serve_metrics(request);
    }
    if request.handler() != Some(HANDLER_NAME) {
        return HookStatus::Declined;
    }
    let _scope = request_log_scope(request);
    let Some(alias) = request.module_request_data::<Alias>() else {
        log::error!(
            "SetHandler rustapp is set for a URL no RustAppAlias covers; mount the application with RustAppAlias instead"
        );
        return HttpStatus::INTERNAL_SERVER_ERROR.into();
    };
    let Some(registry) = Registry::current() else {
        log::error!("{alias} cannot serve: this process did not start mod_rustapp's applications");
        return HttpStatus::INTERNAL_SERVER_ERROR.into();
    };
    let dir = request.module_dir_config::<DirConfig>();
    let pass_authorization = dir.is_some_and(DirConfig::passes_authorization);
    let slow_after = DirConfig::slow_request_threshold(dir);
    let delivery = Delivery {
        idle: DirConfig::stream_idle_timeout(dir, alias),
        error_override: DirConfig::overrides_errors(dir),
        sendfile_roots: DirConfig::sendfile_roots(dir),
        answered_by: std::cell::Cell::new(None),
    };
    // The type mod_mime guessed from the library's file name is not the application's.
    request.clear_content_type();
    let exchange = Exchange::new(request, alias.mount.script_name(), pass_authorization);
    // Held until the handler returns: a tunnel, if the application takes the connection,
    // holds this thread until it closes.
    let _tunnel = match exchange.upgrade_offer() {
        Some(_) => match reserve_tunnel(request, alias) {
            Some(slot) => Some(slot),
            None => return HttpStatus::SERVICE_UNAVAILABLE.into(),
        },
        None => None,
    };
    let placed = placement(request, alias, None);
    let figures = Counted::new(registry, alias, placed);
    // Only a counted request, or one in a watched location, reads the clock.
    let started = (figures.alias.is_some() || slow_after.is_some()).then(std::time::Instant::now);
    let status = match placed {
        Ok(Placement::Embedded) => embedded::serve(&exchange, alias, registry, &delivery),
        Ok(Placement::Group(index)) => match registry.group(index) {
            Some(group) => {
                let buffer_limit = DirConfig::request_body_buffer_limit(dir);
                serve_via_daemon(&exchange, alias, group, buffer_limit, &delivery)
            }
            None => {
                log::error!(
                    "{alias} should run in a daemon group this process does not know; answering 500"
                );
                Err(HttpStatus::INTERNAL_SERVER_ERROR)
            }
        },
        Err(EmbeddingForbidden) => {
            log::error!(
                "{alias} has no daemon process group and RustAppRestrictEmbedded On forbids running it inside Apache; give it one with RustAppProcessGroup or process-group=; answering 500"
            );
            Err(HttpStatus::INTERNAL_SERVER_ERROR)
        }
    };
    figures.over(status.err(), started);
    // A switched connection lasts as long as its tunnel: not a slow request.
    if let (Some(limit), Some(started), None) = (slow_after, started, &_tunnel) {
        let took = started.elapsed();
        if took > limit {
            let ran = match (placed, delivery.answered_by.get()) {
                (Ok(Placement::Group(index)), pid) => {
                    let group = registry
                        .group(index)
                        .map_or("?", |g| g.config.name.as_str());
                    let pid = pid.map_or_else(|| "?".to_owned(), |pid| pid.to_string());
                    format!("in daemon group '{group}' process {pid}")
                }
                _ => format!("embedded in Apache process {}", std::process::id()),
            };
            log::warn!(
                "slow request: {} {} to {alias} took {} ms, {ran} (RustAppSlowRequestLog {} s)",
                String::from_utf8_lossy(request.method()),
                String::from_utf8_lossy(request.unparsed_uri()).escape_debug(),
                took.as_millis(),
                limit.as_secs_f64()
            );
        }
    }
    match status {
        Ok(()) => HookStatus::Ok,
        Err(status) => status.into(),
    }
}

/// A request counted in its application's figures and, in a daemon group, the group's.
struct Counted<'r> {
    alias: Option<&'r AliasFigures>,
    group: Option<&'r GroupFigures>,
}

impl<'r> Counted<'r> {
    /// Counts the request as begun.
    fn new(
        registry: &'r Registry,
        alias: &Alias,
        placed: Result<Placement, EmbeddingForbidden>,
    ) -> Counted<'r> {
        let counted = Counted {
            alias: registry.alias_figures(alias.index),
            group: match placed {
                Ok(Placement::Group(index)) => {
                    registry.group(index).and_then(|g| g.figures.as_deref())
                }
                _ => None,
            },
        };
        if let Some(figures) = counted.alias {
            figures.request_began();
        }
        if let Some(figures) = counted.group {
            figures.request_sent();
        }
        counted
    }

    /// The request is over, answered with Apache's `error` page if it has one.
    fn over(&self, error: Option<HttpStatus>, started: Option<std::time::Instant>) {
        let code = error.map(HttpStatus::code);
        if let Some(figures) = self.group {
            figures.request_over(code);
        }
        if let (Some(figures), Some(started)) = (self.alias, started) {
            figures.request_over(started.elapsed(), code.is_some());
        }
    }
}
