//! How often a response or a tunnel that waits looks around, whatever it waits for.

use std::time::Duration;

/// How often a waiting response or quiet tunnel looks at the client and at Apache stopping.
pub(super) const LOOK_AROUND: Duration = Duration::from_secs(1);

/// How often an HTTP/2 stream, which has no socket of its own to watch (mod_http2's pipe is a
/// hint, not readiness), is probed instead.
pub(super) const PROBE_H2: Duration = Duration::from_millis(250);
