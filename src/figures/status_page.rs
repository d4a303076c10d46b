//! The figures on mod_status's page: `Name: value` lines for its machine-readable form
//! (`?auto`), and HTML tables for people.

use std::fmt::Write;
use std::time::Duration;

use super::snapshot::{GroupSnapshot, Snapshot};

/// `?auto` lines. Keys carry the group's name (and the process's pid), so that each is one
/// `Name: value` line; scrapers that do not know them pass them by.
pub(crate) fn status_lines(snapshot: &Snapshot) -> String {
    let mut out = String::new();
    for s in &snapshot.groups {
        let key = format!("RustAppGroup.{}", s.name);
        for (name, value) in group_figures(s) {
            let _ = writeln!(out, "{key}.{name}: {value}");
        }
        for p in &s.processes {
            let key = format!("RustAppProcess.{}.{}", s.name, p.pid);
            let _ = writeln!(out, "{key}.State: {}", p.state);
            let _ = writeln!(out, "{key}.Uptime: {}", p.uptime.as_secs());
            let _ = writeln!(out, "{key}.Served: {}", p.served);
            let _ = writeln!(out, "{key}.InFlight: {}", p.in_flight);
            let _ = writeln!(out, "{key}.BusyThreads: {}", p.busy_threads);
            if let Some(bytes) = p.resident_bytes {
                let _ = writeln!(out, "{key}.ResidentBytes: {bytes}");
            }
            if let Some(cpu) = p.cpu_time {
                let _ = writeln!(out, "{key}.CPUSeconds: {:.2}", cpu.as_secs_f64());
            }
            if let Some((age, url)) = &p.longest {
                let _ = writeln!(out, "{key}.LongestRequestSeconds: {:.3}", age.as_secs_f64());
                let _ = writeln!(out, "{key}.LongestRequestURL: {url}");
            }
        }
    }
    for a in &snapshot.aliases {
        let key = format!("RustAppApp.{}", a.mount);
        let _ = writeln!(out, "{key}.Requests: {}", a.requests);
        let _ = writeln!(out, "{key}.Errors: {}", a.errors);
        let _ = writeln!(out, "{key}.InFlight: {}", a.in_flight);
        let mean = a.sum.as_secs_f64() * 1000.0 / a.requests.max(1) as f64;
        let _ = writeln!(out, "{key}.MeanMilliseconds: {mean:.3}");
    }
    out
}

/// A group's own figures, by key.
fn group_figures(s: &GroupSnapshot) -> Vec<(&'static str, String)> {
    let mut figures = vec![
        ("ProcessesConfigured", s.shape.processes.to_string()),
        ("Processes", s.processes.len().to_string()),
        ("ServingProcesses", s.serving.to_string()),
        ("ThreadsPerProcess", s.shape.threads.to_string()),
        ("BusyThreads", s.busy_threads.to_string()),
        ("RequestsWaiting", s.waiting.to_string()),
        ("RequestsInFlight", s.in_flight.to_string()),
        ("OpenStreams", s.streams.to_string()),
        ("OpenTunnels", s.tunnels.to_string()),
        ("Requests", s.requests.to_string()),
        ("Answered502", s.answered[0].1.to_string()),
        ("Answered503", s.answered[1].1.to_string()),
        ("Answered504", s.answered[2].1.to_string()),
    ];
    let ends = s
        .ends
        .iter()
        .map(|(reason, n)| format!("{}={n}", reason.name()))
        .collect::<Vec<_>>()
        .join(" ");
    figures.push(("Ends", ends));
    let signals = s
        .signals
        .iter()
        .map(|(signal, n)| format!("{signal}={n}"))
        .collect::<Vec<_>>()
        .join(" ");
    figures.push(("EndsBySignal", signals));
    if let Some(last) = &s.last_end {
        figures.push(("LastEnd", last.to_string()));
        figures.push(("LastEndUnixTime", (last.at_unix_ms / 1000).to_string()));
    }
    figures
}

fn html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn ago(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// The HTML section.
pub(crate) fn status_html(snapshot: &Snapshot) -> String {
    let mut out = String::from("<hr />\n<h2>mod_rustapp</h2>\n");
    for s in &snapshot.groups {
        let _ = writeln!(
            out,
            "<h3>Daemon group {}</h3>\n<table border=\"0\">",
            html(&s.name)
        );
        for (name, value) in group_figures(s) {
            let _ = writeln!(
                out,
                "<tr><th align=\"left\">{name}</th><td>{}</td></tr>",
                html(&value)
            );
        }
        out.push_str("</table>\n<table border=\"1\">\n<tr><th>PID</th><th>State</th><th>Uptime</th><th>Served</th><th>In flight</th><th>Busy threads</th><th>Resident</th><th>CPU</th><th>Longest request</th></tr>\n");
        for p in &s.processes {
            let longest = p
                .longest
                .as_ref()
                .map(|(age, url)| format!("{} {}", ago(*age), html(url)))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                p.pid,
                p.state,
                ago(p.uptime),
                p.served,
                p.in_flight,
                p.busy_threads,
                p.resident_bytes
                    .map_or_else(String::new, |b| format!("{} MiB", b >> 20)),
                p.cpu_time
                    .map_or_else(String::new, |t| format!("{:.2} s", t.as_secs_f64())),
                longest
            );
        }
        out.push_str("</table>\n");
    }
    if !snapshot.aliases.is_empty() {
        out.push_str("<h3>Applications</h3>\n<table border=\"1\">\n<tr><th>Mount</th><th>Library</th><th>Requests</th><th>Errors</th><th>In flight</th><th>Mean</th></tr>\n");
        for a in &snapshot.aliases {
            let mean = a.sum.as_secs_f64() * 1000.0 / a.requests.max(1) as f64;
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{mean:.3} ms</td></tr>",
                html(&a.mount),
                html(&a.library),
                a.requests,
                a.errors,
                a.in_flight
            );
        }
        out.push_str("</table>\n");
    }
    out
}
