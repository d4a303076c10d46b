//! `rustapp-express status`: a server's figures, read from the metrics location its generated
//! configuration mounts (loopback only), as a table in the terminal.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Where the generated configuration mounts the metrics (`Require local`).
pub const METRICS_PATH: &str = "/.rustapp-express/metrics";

/// One sample of the metrics: its name, its labels, its value.
#[derive(Debug, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

impl Sample {
    fn label(&self, name: &str) -> &str {
        self.labels.get(name).map_or("", String::as_str)
    }
}

/// The samples of Prometheus text (comments skipped; a line it cannot read is an error).
fn parse(text: &str) -> Result<Vec<Sample>, String> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|line| {
            sample(line).ok_or_else(|| {
                format!("the server's metrics have a line this command cannot read: {line}")
            })
        })
        .collect()
}

/// `name{key="value",...} number`, or `name number`.
fn sample(line: &str) -> Option<Sample> {
    let Some((name, mut rest)) = line.split_once('{') else {
        let (name, value) = line.split_once(' ')?;
        return Some(Sample {
            name: name.to_owned(),
            labels: BTreeMap::new(),
            value: value.trim().parse().ok()?,
        });
    };
    let mut labels = BTreeMap::new();
    loop {
        rest = rest.trim_start_matches(',');
        if let Some(after) = rest.strip_prefix('}') {
            return Some(Sample {
                name: name.to_owned(),
                labels,
                value: after.trim().parse().ok()?,
            });
        }
        let (key, after) = rest.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (_, c) => value.push(c),
            }
        };
        labels.insert(key.to_owned(), value);
        rest = &after[end + 1..];
    }
}

/// Asks the server at `host:port` for its metrics.
fn fetch(host: &str, port: u16) -> Result<String, String> {
    let cannot = |e: std::io::Error| format!("cannot ask the server at {host}:{port}: {e}");
    let mut stream = TcpStream::connect((host, port)).map_err(cannot)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(cannot)?;
    write!(
        stream,
        "GET {METRICS_PATH} HTTP/1.0\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n"
    )
    .map_err(cannot)?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).map_err(cannot)?;
    let (head, body) = reply
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("the server at {host}:{port} did not answer over HTTP"))?;
    let status = head.lines().next().unwrap_or_default();
    if !status.contains(" 200 ") {
        return Err(format!(
            "the server at {host}:{port} answered {status} for {METRICS_PATH}: is it a server rustapp-express set up, with RustAppFigures On?"
        ));
    }
    Ok(body.to_owned())
}

/// The table `status` prints.
fn table(samples: &[Sample]) -> String {
    let mut out = String::new();
    let value = |name: &str, labels: &[(&str, &str)]| {
        samples
            .iter()
            .find(|s| s.name == name && labels.iter().all(|(k, v)| s.label(k) == *v))
            .map_or(0.0, |s| s.value)
    };
    let groups: Vec<&str> = samples
        .iter()
        .filter(|s| s.name == "rustapp_daemon_processes_configured")
        .map(|s| s.label("group"))
        .collect();
    for group in groups {
        let g = [("group", group)];
        let figure = |name: &str| value(name, &g) as u64;
        out.push_str(&format!(
            "daemon group {group}: {} of {} processes, {} threads each\n",
            figure("rustapp_daemon_processes"),
            figure("rustapp_daemon_processes_configured"),
            figure("rustapp_daemon_threads_per_process"),
        ));
        out.push_str(&format!(
            "  requests {}  in flight {}  waiting {}  busy threads {}  streams {}  tunnels {}\n",
            figure("rustapp_daemon_requests_total"),
            figure("rustapp_daemon_requests_in_flight"),
            figure("rustapp_daemon_requests_waiting"),
            figure("rustapp_daemon_busy_threads"),
            figure("rustapp_daemon_open_streams"),
            figure("rustapp_daemon_open_tunnels"),
        ));
        let answered: Vec<String> = ["502", "503", "504"]
            .iter()
            .map(|status| {
                let n = value(
                    "rustapp_daemon_errors_total",
                    &[("group", group), ("status", status)],
                );
                format!("{status}: {n}")
            })
            .collect();
        out.push_str(&format!("  answered for it: {}\n", answered.join("  ")));
        let ends: Vec<String> = samples
            .iter()
            .filter(|s| s.name == "rustapp_daemon_process_ends_total" && s.label("group") == group)
            .map(|s| format!("{} {}", s.label("reason"), s.value))
            .collect();
        if !ends.is_empty() {
            out.push_str(&format!("  process ends: {}\n", ends.join(", ")));
        }
        if let Some(last) = samples.iter().find(|s| {
            s.name == "rustapp_daemon_last_end_timestamp_seconds" && s.label("group") == group
        }) {
            let ago = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |now| now.as_secs_f64() - last.value);
            out.push_str(&format!(
                "  last end: process {} ({} {}), {ago:.0} s ago\n",
                last.label("pid"),
                last.label("reason"),
                last.label("detail"),
            ));
        }
        out.push_str(&format!(
            "  {:>8}  {:<9} {:>9} {:>8} {:>9} {:>5} {:>9} {:>8}  {}\n",
            "PID",
            "STATE",
            "UPTIME",
            "SERVED",
            "IN FLIGHT",
            "BUSY",
            "RESIDENT",
            "CPU",
            "LONGEST REQUEST"
        ));
        for state in samples
            .iter()
            .filter(|s| s.name == "rustapp_daemon_process_state" && s.label("group") == group)
        {
            let pid = state.label("pid");
            let p = [("group", group), ("pid", pid)];
            let longest = samples
                .iter()
                .find(|s| {
                    s.name == "rustapp_daemon_process_longest_request_seconds"
                        && s.label("group") == group
                        && s.label("pid") == pid
                })
                .map_or_else(
                    || "-".to_owned(),
                    |s| format!("{:.1} s {}", s.value, s.label("url")),
                );
            out.push_str(&format!(
                "  {:>8}  {:<9} {:>7.0} s {:>8} {:>9} {:>5} {:>5} MiB {:>6.2} s  {}\n",
                pid,
                state.label("state"),
                value("rustapp_daemon_process_uptime_seconds", &p),
                value("rustapp_daemon_process_requests_total", &p),
                value("rustapp_daemon_process_requests_in_flight", &p),
                value("rustapp_daemon_process_busy_threads", &p),
                (value("rustapp_daemon_process_resident_memory_bytes", &p) as u64) >> 20,
                value("rustapp_daemon_process_cpu_seconds_total", &p),
                longest
            ));
        }
    }
    for app in samples
        .iter()
        .filter(|s| s.name == "rustapp_app_requests_total")
    {
        let a = [
            ("mount", app.label("mount")),
            ("library", app.label("library")),
        ];
        let requests = app.value;
        let sum = value("rustapp_app_request_duration_seconds_sum", &a);
        out.push_str(&format!(
            "application at {} ({}): requests {requests}  errors {}  in flight {}  mean {:.2} ms\n",
            app.label("mount"),
            app.label("library"),
            value("rustapp_app_errors_total", &a),
            value("rustapp_app_requests_in_flight", &a),
            sum * 1000.0 / requests.max(1.0),
        ));
    }
    out
}

/// Prints the figures of the server listening on `host:port`.
pub fn show(host: &str, port: u16) -> Result<(), String> {
    let samples = parse(&fetch(host, port)?)?;
    print!("{}", table(&samples));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_read_with_escaped_labels() {
        let samples = parse(
            "# HELP x y\nrustapp_a{group=\"a\\\"b\",le=\"+Inf\"} 3\nplain 1.5\nrustapp_b{} 2\n",
        )
        .unwrap();
        assert_eq!(samples.len(), 3);
        assert_eq!(samples[0].label("group"), "a\"b");
        assert_eq!(samples[0].label("le"), "+Inf");
        assert_eq!(samples[0].value, 3.0);
        assert_eq!((samples[1].name.as_str(), samples[1].value), ("plain", 1.5));
        assert_eq!(samples[2].value, 2.0);
        assert!(parse("broken{line\n").is_err());
    }
}
