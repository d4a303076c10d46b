//! Embedded mode: the application runs on this Apache thread, and its answer goes straight
//! through the response pipeline.

use super::Registry;
use crate::config::Alias;
use crate::ffi::HttpStatus;
use crate::host::{Exchange, Failure, SWITCHING_PROTOCOLS, answer};
use crate::respond::{
    BodySource, Delivery, IdleLimit, WholeBody, deliver, overridden_error, relay, send_named_file,
};

/// Serves `exchange` with this process's instance of `alias`; `Err` is the status Apache
/// answers with (the reason is logged).
///
/// `delivery`: the URL's stream-idle-timeout, error override and file handoff roots.
pub(crate) fn serve(
    exchange: &Exchange<'_>,
    alias: &Alias,
    registry: &Registry,
    delivery: &Delivery<'_>,
) -> Result<(), HttpStatus> {
    let app = registry.instance(alias.index).map_err(|reason| {
        log::error!("{alias} cannot serve: {reason}");
        HttpStatus::INTERNAL_SERVER_ERROR
    })?;
    match answer(app, exchange) {
        Ok(answer) if answer.head.status == SWITCHING_PROTOCOLS => {
            if answer.body.is_some() || answer.whole.is_some() {
                log::warn!("{alias} answered 101 with a body; the body was dropped");
            }
            drop(answer.body);
            // A 101 is accepted only once the application took the connection.
            let Some(tunnel_end) = exchange.take_tunnel_end() else {
                return Err(HttpStatus::INTERNAL_SERVER_ERROR);
            };
            let protocol = exchange.upgrade_protocol();
            relay(
                exchange.request(),
                alias,
                &protocol,
                &tunnel_end,
                delivery.idle,
            );
            Ok(())
        }
        Ok(mut answer) => {
            if let Some(status) = overridden_error(&answer.head, delivery.error_override) {
                // The body closes unsent: Apache's error handling answers instead.
                return Err(status);
            }
            if let Some(named) = exchange.sendfile() {
                drop(answer.body);
                let (request, roots) = (exchange.request(), delivery.sendfile_roots);
                return send_named_file(request, alias, &named, None, roots, answer.head.status);
            }
            let mut whole = WholeBody(answer.whole);
            let body = match answer.body.as_mut() {
                Some(open) => Some(open as &mut dyn BodySource),
                None if whole.0.is_some() => Some(&mut whole as &mut dyn BodySource),
                None => None,
            };
            deliver(
                exchange.request(),
                alias,
                answer.head,
                body,
                IdleLimit(delivery.idle),
            );
            Ok(())
        }
        Err(failure) => {
            let status = failure.status();
            match failure {
                // Apache logged why it could not read the body.
                Failure::BodyUnreadable(_) => log::debug!("{alias} {failure}"),
                Failure::Stopped => log::warn!("{alias} {failure}; answering {status}"),
                _ => log::error!("{alias} {failure}; answering {status}"),
            }
            Err(HttpStatus::error_or(
                status,
                HttpStatus::INTERNAL_SERVER_ERROR,
            ))
        }
    }
}
