//! The figures in Prometheus's text exposition format (version 0.0.4).

use std::fmt::Write;

use super::alias::BUCKET_BOUNDS_US;
use super::snapshot::Snapshot;

/// The content type of [`prometheus_text`].
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A label value with `\`, `"` and line feeds escaped, as the format requires.
fn label(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// Writes one metric family: its help and type, then each sample.
struct Family<'o> {
    out: &'o mut String,
}

impl Family<'_> {
    fn header(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &str, value: impl std::fmt::Display) {
        let _ = writeln!(self.out, "{name}{{{labels}}} {value}");
    }
}

pub(crate) fn prometheus_text(snapshot: &Snapshot) -> String {
    let mut out = String::new();
    let mut f = Family { out: &mut out };
    let groups = &snapshot.groups;
    let g = |name: &str| format!("group=\"{}\"", label(name));

    type GroupFigure = fn(&super::snapshot::GroupSnapshot) -> u64;
    let group_gauges: [(&str, &str, &str, GroupFigure); 10] = [
        (
            "rustapp_daemon_processes_configured",
            "gauge",
            "Processes the group is configured with (processes=).",
            |s| u64::from(s.shape.processes),
        ),
        (
            "rustapp_daemon_threads_per_process",
            "gauge",
            "Threads each process of the group serves with (threads=).",
            |s| u64::from(s.shape.threads),
        ),
        (
            "rustapp_daemon_processes",
            "gauge",
            "Processes of the group alive now, of this and the previous generation.",
            |s| s.processes.len() as u64,
        ),
        (
            "rustapp_daemon_serving_processes",
            "gauge",
            "Processes of the group serving now (an elastic group's spares wait).",
            |s| s.serving,
        ),
        (
            "rustapp_daemon_busy_threads",
            "gauge",
            "Threads of the group's processes running a request now.",
            |s| s.busy_threads,
        ),
        (
            "rustapp_daemon_requests_in_flight",
            "gauge",
            "Requests Apache has sent the group that have not finished.",
            |s| s.in_flight,
        ),
        (
            "rustapp_daemon_requests_waiting",
            "gauge",
            "Requests sent to the group that no process has taken yet.",
            |s| s.waiting,
        ),
        (
            "rustapp_daemon_open_streams",
            "gauge",
            "Responses waiting for their body or for a slow client.",
            |s| s.streams,
        ),
        (
            "rustapp_daemon_open_tunnels",
            "gauge",
            "Upgraded connections (WebSocket, ...) relayed now.",
            |s| s.tunnels,
        ),
        (
            "rustapp_daemon_requests_total",
            "counter",
            "Requests (and user-store checks) Apache's children sent the group.",
            |s| s.requests,
        ),
    ];
    for (name, kind, help, value) in group_gauges {
        f.header(name, kind, help);
        for s in groups {
            f.sample(name, &g(&s.name), value(s));
        }
    }
    // Counters by one label more than the group: (help, label, each group's values by label).
    type ByLabel = fn(&super::snapshot::GroupSnapshot) -> Vec<(String, u64)>;
    let by_label: [(&str, &str, &str, ByLabel); 4] = [
        (
            "rustapp_daemon_errors_total",
            "502, 503 and 504 Apache answered on the group's behalf.",
            "status",
            |s| {
                s.answered
                    .iter()
                    .map(|(status, n)| (status.to_string(), *n))
                    .collect()
            },
        ),
        (
            "rustapp_daemon_process_ends_total",
            "Processes of the group that ended (recycled or crashed), by reason.",
            "reason",
            |s| {
                s.ends
                    .iter()
                    .map(|(reason, n)| (reason.name().to_owned(), *n))
                    .collect()
            },
        ),
        (
            "rustapp_daemon_process_signals_total",
            "Processes of the group killed by a signal, by signal number.",
            "signal",
            |s| {
                s.signals
                    .iter()
                    .map(|(signal, n)| (signal.to_string(), *n))
                    .collect()
            },
        ),
        (
            "rustapp_daemon_process_exit_codes_total",
            "Processes of the group that exited with a status of their own, by status.",
            "code",
            |s| {
                s.exit_codes
                    .iter()
                    .map(|(code, n)| (code.to_string(), *n))
                    .collect()
            },
        ),
    ];
    for (name, help, label_name, values) in by_label {
        f.header(name, "counter", help);
        for s in groups {
            for (value, count) in values(s) {
                f.sample(
                    name,
                    &format!("{},{label_name}=\"{value}\"", g(&s.name)),
                    count,
                );
            }
        }
    }
    let name = "rustapp_daemon_last_end_timestamp_seconds";
    f.header(
        name,
        "gauge",
        "When a process of the group last ended, and how.",
    );
    for s in groups {
        if let Some(last) = &s.last_end {
            let labels = format!(
                "{},pid=\"{}\",reason=\"{}\",detail=\"{}\"",
                g(&s.name),
                last.pid,
                last.reason.name(),
                last.detail
            );
            f.sample(name, &labels, last.at_unix_ms as f64 / 1000.0);
        }
    }

    let p = |group: &str, pid: u64| format!("{},pid=\"{pid}\"", g(group));
    let name = "rustapp_daemon_process_state";
    f.header(
        name,
        "gauge",
        "Each process of the group: 1 for its state (starting, ready, retiring).",
    );
    for s in groups {
        for process in &s.processes {
            f.sample(
                name,
                &format!("{},state=\"{}\"", p(&s.name, process.pid), process.state),
                1,
            );
        }
    }
    type ProcessFigure = fn(&super::snapshot::ProcessSnapshot) -> Option<f64>;
    let process_figures: [(&str, &str, &str, ProcessFigure); 6] = [
        (
            "rustapp_daemon_process_uptime_seconds",
            "gauge",
            "How long the process has run.",
            |p| Some(p.uptime.as_secs_f64()),
        ),
        (
            "rustapp_daemon_process_requests_total",
            "counter",
            "Requests the process has served.",
            |p| Some(p.served as f64),
        ),
        (
            "rustapp_daemon_process_requests_in_flight",
            "gauge",
            "Requests the process holds now.",
            |p| Some(p.in_flight as f64),
        ),
        (
            "rustapp_daemon_process_busy_threads",
            "gauge",
            "Threads of the process serving a request now.",
            |p| Some(p.busy_threads as f64),
        ),
        (
            "rustapp_daemon_process_resident_memory_bytes",
            "gauge",
            "The process's resident memory.",
            |p| p.resident_bytes.map(|b| b as f64),
        ),
        (
            "rustapp_daemon_process_cpu_seconds_total",
            "counter",
            "CPU time the process has used.",
            |p| p.cpu_time.map(|t| t.as_secs_f64()),
        ),
    ];
    for (name, kind, help, value) in process_figures {
        f.header(name, kind, help);
        for s in groups {
            for process in &s.processes {
                if let Some(v) = value(process) {
                    f.sample(name, &p(&s.name, process.pid), v);
                }
            }
        }
    }
    let name = "rustapp_daemon_process_longest_request_seconds";
    f.header(
        name,
        "gauge",
        "The request one of the process's threads has run longest, with its URL.",
    );
    for s in groups {
        for process in &s.processes {
            if let Some((age, url)) = &process.longest {
                let labels = format!("{},url=\"{}\"", p(&s.name, process.pid), label(url));
                f.sample(name, &labels, age.as_secs_f64());
            }
        }
    }

    let a = |mount: &str, library: &str| {
        format!("mount=\"{}\",library=\"{}\"", label(mount), label(library))
    };
    type AliasFigure = fn(&super::snapshot::AliasSnapshot) -> u64;
    let alias_figures: [(&str, &str, &str, AliasFigure); 3] = [
        (
            "rustapp_app_requests_total",
            "counter",
            "Requests for the application (embedded or in a daemon group).",
            |s| s.requests,
        ),
        (
            "rustapp_app_errors_total",
            "counter",
            "Requests for the application Apache answered with an error status of its own.",
            |s| s.errors,
        ),
        (
            "rustapp_app_requests_in_flight",
            "gauge",
            "Requests for the application that have not finished.",
            |s| s.in_flight,
        ),
    ];
    for (name, kind, help, value) in alias_figures {
        f.header(name, kind, help);
        for s in &snapshot.aliases {
            f.sample(name, &a(&s.mount, &s.library), value(s));
        }
    }
    let name = "rustapp_app_request_duration_seconds";
    f.header(
        name,
        "histogram",
        "How long requests for the application took, to their last byte.",
    );
    for s in &snapshot.aliases {
        let labels = a(&s.mount, &s.library);
        let mut cumulative = 0;
        for (bucket, count) in s.buckets.iter().enumerate() {
            cumulative += count;
            let le = BUCKET_BOUNDS_US
                .get(bucket)
                .map_or_else(|| "+Inf".to_owned(), |us| format!("{}", *us as f64 / 1e6));
            f.sample(
                &format!("{name}_bucket"),
                &format!("{labels},le=\"{le}\""),
                cumulative,
            );
        }
        f.sample(&format!("{name}_sum"), &labels, s.sum.as_secs_f64());
        f.sample(&format!("{name}_count"), &labels, cumulative);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn label_values_are_escaped() {
        assert_eq!(super::label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
