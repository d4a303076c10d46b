//! The figures where an admin looks: the `rustapp-metrics` handler (Prometheus text) and
//! mod_status's page (through its status hook).

use std::ffi::CStr;

use super::Registry;
use crate::ffi::{HookStatus, HttpStatus, Request, StatusFlags};
use crate::figures::{
    GroupShape, PROMETHEUS_CONTENT_TYPE, Snapshot, prometheus_text, status_html, status_lines,
};

/// `r->handler` of a location that serves the metrics (`SetHandler rustapp-metrics`).
pub(crate) const METRICS_HANDLER: &CStr = c"rustapp-metrics";

/// Reads this generation's figures now.
fn snapshot(registry: &Registry) -> Snapshot {
    let generation = registry.generation();
    let groups = generation
        .daemons
        .iter()
        .flat_map(|daemons| daemons.each_group())
        .filter_map(|(_, group)| {
            let shape = GroupShape {
                processes: group.config.processes,
                threads: group.config.threads,
            };
            Some((group.figures.as_ref()?, shape))
        });
    let aliases = generation.figures.aliases.iter().flatten();
    Snapshot::read(groups, aliases)
}

/// Answers a request for the metrics.
pub(crate) fn serve_metrics(request: Request<'_>) -> HookStatus {
    if !matches!(request.method(), b"GET" | b"HEAD") {
        return HttpStatus::METHOD_NOT_ALLOWED.into();
    }
    let Some(registry) = Registry::current() else {
        return HttpStatus::INTERNAL_SERVER_ERROR.into();
    };
    if registry.generation().figures.is_off() {
        log::error!(
            "the rustapp-metrics handler has no figures to show: RustAppFigures Off; answering 404"
        );
        return HttpStatus::NOT_FOUND.into();
    }
    let text = prometheus_text(&snapshot(registry));
    request.set_content_type(PROMETHEUS_CONTENT_TYPE.as_bytes());
    request.add_response_header(b"Cache-Control", b"no-store");
    if !request.is_head() {
        // A client gone away is nothing to report.
        let _ = request.write(text.as_bytes());
    }
    HookStatus::Ok
}

/// mod_status's hook: this module's section of its page.
pub(crate) fn status_section(request: Request<'_>, flags: StatusFlags) {
    let Some(registry) = Registry::current() else {
        return;
    };
    if registry.generation().figures.is_off() {
        return;
    }
    let snapshot = snapshot(registry);
    let text = if flags.short {
        status_lines(&snapshot)
    } else {
        status_html(&snapshot)
    };
    let _ = request.write(text.as_bytes());
}
