//! Seeing inside: each daemon group and application on mod_status's page (`?auto` and HTML)
//! and in Prometheus text from `SetHandler rustapp-metrics`, kept in memory shared by Apache's
//! processes and the daemons, where one group's application cannot change what another
//! group, or Apache, counted.

mod support;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use support::{Apache, ApacheConfig, artifacts, ensure_user, http};

const SHOP_USER: &str = "rustapp-test-a";
const BLOG_USER: &str = "rustapp-test-b";

fn start_with(library: &str, extra: &str) -> Apache {
    ensure_user(SHOP_USER);
    ensure_user(BLOG_USER);
    Apache::start(ApacheConfig::new(&format!(
        "LoadModule status_module /usr/lib/apache2/modules/mod_status.so\n\
         <Location /server-status>\n  SetHandler server-status\n</Location>\n\
         <Location /rustapp-metrics>\n  SetHandler rustapp-metrics\n</Location>\n\
         RustAppDaemonProcess shop processes=2 threads=4 user={SHOP_USER} home=/\n\
         RustAppDaemonProcess blog threads=2 user={BLOG_USER} home=/\n\
         RustAppAlias /shop {library} process-group=shop\n\
         RustAppAlias /blog {} process-group=blog\n\
         RustAppAlias /e {}\n{extra}",
        artifacts().testapp.display(),
        artifacts().testapp.display(),
    )))
}

fn start() -> Apache {
    let apache = start_with(&artifacts().testapp.display().to_string(), "");
    wait_until_serving(&apache, 3);
    apache
}

/// Waits until `count` daemon processes have said they serve.
fn wait_until_serving(apache: &Apache, count: usize) {
    assert!(
        apache.wait_for_log(" serving as ", count, Duration::from_secs(20)),
        "{}",
        apache.error_log()
    );
}

/// mod_status's machine-readable page, as `Name: value` pairs.
fn status(apache: &Apache) -> HashMap<String, String> {
    let reply = http::get(&apache.url("/server-status?auto"));
    assert_eq!(reply.status, 200);
    reply
        .text()
        .lines()
        .filter_map(|line| line.split_once(": "))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn number(status: &HashMap<String, String>, key: &str) -> u64 {
    status
        .get(key)
        .unwrap_or_else(|| panic!("{key} missing from {status:#?}"))
        .parse()
        .unwrap()
}

/// The pids the status page shows for `group`.
fn shown_pids(status: &HashMap<String, String>, group: &str) -> BTreeSet<u32> {
    let prefix = format!("RustAppProcess.{group}.");
    status
        .keys()
        .filter_map(|k| k.strip_prefix(&prefix)?.strip_suffix(".State"))
        .map(|pid| pid.parse().unwrap())
        .collect()
}

/// The pids the error log says `group` started, and that are still running.
fn running_pids(apache: &Apache, group: &str) -> BTreeSet<u32> {
    let needle = format!("daemon group '{group}' started process ");
    let log = apache.error_log();
    let started = log.lines().filter_map(|l| {
        let after = l.split(&needle).nth(1).or_else(|| {
            l.split(&format!("daemon group '{group}' process "))
                .nth(1)?
                .split("started process ")
                .nth(1)
        })?;
        after.split([',', ' ']).next()?.parse::<u32>().ok()
    });
    started
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|stat| !stat.contains(") Z "))
        })
        .collect()
}

fn served_by(status: &HashMap<String, String>, group: &str) -> u64 {
    shown_pids(status, group)
        .iter()
        .map(|pid| number(status, &format!("RustAppProcess.{group}.{pid}.Served")))
        .sum()
}

#[test]
fn mod_status_shows_each_group_with_the_pids_of_its_running_daemons() {
    let apache = start();
    let status = status(&apache);
    for (group, configured) in [("shop", 2), ("blog", 1)] {
        let running = running_pids(&apache, group);
        assert_eq!(running.len(), configured, "{}", apache.error_log());
        assert_eq!(shown_pids(&status, group), running, "{status:#?}");
        let key = format!("RustAppGroup.{group}");
        assert_eq!(
            number(&status, &format!("{key}.ProcessesConfigured")),
            configured as u64
        );
        assert_eq!(
            number(&status, &format!("{key}.Processes")),
            configured as u64
        );
        for pid in running {
            let process = format!("RustAppProcess.{group}.{pid}");
            assert_eq!(status[&format!("{process}.State")], "ready");
            assert!(number(&status, &format!("{process}.ResidentBytes")) > 1 << 20);
        }
    }
    assert_eq!(number(&status, "RustAppGroup.shop.ThreadsPerProcess"), 4);
    // The page for people has them too.
    let html = http::get(&apache.url("/server-status")).text();
    assert!(html.contains("<h3>Daemon group shop</h3>"), "{html}");
    assert!(html.contains("<h3>Daemon group blog</h3>"), "{html}");
}

#[test]
fn counters_move_with_traffic_and_a_running_request_shows_its_url() {
    let apache = start();
    let before = status(&apache);
    for _ in 0..7 {
        assert_eq!(http::get(&apache.url("/shop/info")).status, 200);
    }
    for _ in 0..3 {
        assert_eq!(http::get(&apache.url("/e/info")).status, 200);
    }
    assert_eq!(http::get(&apache.url("/shop/error")).status, 500);
    let after = status(&apache);
    let moved = |key: &str| number(&after, key) - number(&before, key);
    assert_eq!(moved("RustAppGroup.shop.Requests"), 8);
    assert_eq!(moved("RustAppGroup.blog.Requests"), 0);
    assert_eq!(served_by(&after, "shop") - served_by(&before, "shop"), 8);
    assert_eq!(moved("RustAppApp./e.Requests"), 3);
    assert_eq!(moved("RustAppApp./shop.Requests"), 8);
    assert_eq!(moved("RustAppApp./shop.Errors"), 1);
    assert_eq!(number(&after, "RustAppGroup.shop.RequestsInFlight"), 0);
    assert_eq!(number(&after, "RustAppGroup.shop.BusyThreads"), 0);

    // While a request runs, its process shows it as busy, with its URL and age.
    let url = apache.url("/shop/sleep?ms=3000");
    let sleeper = std::thread::spawn(move || http::get(&url).status);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let running = loop {
        let now = status(&apache);
        let found = now
            .iter()
            .find(|(k, v)| k.ends_with(".LongestRequestURL") && v.contains("/shop/sleep"))
            .map(|(k, _)| k.clone());
        if let Some(key) = found {
            break key;
        }
        assert!(std::time::Instant::now() < deadline, "{now:#?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    // Read again: one page reads Apache's counts and the daemon's slots one after the other,
    // so a page read while the request was starting may show the daemon running it but not
    // yet Apache's count, which came first. Read after the daemon showed it, Apache's count
    // is there (the request runs 3 s).
    let (now, key) = (status(&apache), running);
    assert_eq!(number(&now, "RustAppGroup.shop.BusyThreads"), 1, "{now:#?}");
    assert_eq!(
        number(&now, "RustAppGroup.shop.RequestsInFlight"),
        1,
        "{now:#?}"
    );
    assert_eq!(
        number(&now, "RustAppGroup.shop.RequestsWaiting"),
        0,
        "{now:#?}"
    );
    assert_eq!(now[&key], "/shop/sleep?ms=3000");
    assert_eq!(sleeper.join().unwrap(), 200);
}

#[test]
fn a_daemon_killed_with_sigkill_shows_as_an_end_by_signal_9() {
    let apache = start();
    let victim = *running_pids(&apache, "shop").iter().next().unwrap();
    let killed = std::process::Command::new("kill")
        .args(["-9", &victim.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert!(apache.wait_for_log("was killed by signal 9", 1, Duration::from_secs(10)));
    wait_until_serving(&apache, 4);
    let status = status(&apache);
    assert_eq!(status["RustAppGroup.shop.Ends"], "signal=1", "{status:#?}");
    assert_eq!(status["RustAppGroup.shop.EndsBySignal"], "9=1");
    assert_eq!(
        status["RustAppGroup.shop.LastEnd"],
        format!("process {victim} ended: signal 9")
    );
    assert_eq!(status["RustAppGroup.blog.Ends"], "");
    // Its replacement is shown in its place.
    let shown = shown_pids(&status, "shop");
    assert_eq!(shown, running_pids(&apache, "shop"));
    assert!(!shown.contains(&victim));
}

#[test]
fn a_library_replacement_shows_as_such() {
    let dir = support::shared_temp_dir();
    let library = dir.path().join("libshop.so");
    std::fs::copy(&artifacts().testapp, &library).unwrap();
    let apache = start_with(&library.display().to_string(), "");
    wait_until_serving(&apache, 3);
    assert_eq!(http::get(&apache.url("/shop/info")).status, 200);
    let staged = library.with_extension("so.new");
    std::fs::copy(&artifacts().testapp, &staged).unwrap();
    std::fs::rename(&staged, &library).unwrap();
    // Both processes of the group are replaced, one after the other.
    assert!(
        apache.wait_for_log("was replaced", 2, Duration::from_secs(30)),
        "{}",
        apache.error_log()
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status = status(&apache);
        if status["RustAppGroup.shop.Ends"] == "library-replaced=2" {
            assert!(
                status["RustAppGroup.shop.LastEnd"].ends_with("ended: library-replaced"),
                "{status:#?}"
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{status:#?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The metrics, as Python's Prometheus client parses them: `name{labels} value` per sample,
/// labels sorted.
fn parsed_metrics(apache: &Apache) -> HashMap<String, f64> {
    let reply = http::get(&apache.url("/rustapp-metrics"));
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")),
        "{:?}",
        reply.header("content-type")
    );
    let script = "import sys\n\
        from prometheus_client.parser import text_string_to_metric_families\n\
        for family in text_string_to_metric_families(sys.stdin.read()):\n\
        \x20   for s in family.samples:\n\
        \x20       labels = ','.join(f'{k}={v}' for k, v in sorted(s.labels.items()))\n\
        \x20       print(f'{s.name}{{{labels}}} {s.value}')\n";
    // Debian's Python, which has the packaged client (not one a user put first on PATH).
    let mut python = std::process::Command::new("/usr/bin/python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("/usr/bin/python3");
    use std::io::Write;
    python
        .stdin
        .take()
        .unwrap()
        .write_all(reply.text().as_bytes())
        .unwrap();
    let out = python.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the parser refused the metrics: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        reply.text()
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let (sample, value) = line.rsplit_once(' ').unwrap();
            (sample.to_owned(), value.parse().unwrap())
        })
        .collect()
}

#[test]
fn the_prometheus_metrics_parse_and_count_the_requests_sent() {
    let apache = start();
    for _ in 0..5 {
        assert_eq!(http::get(&apache.url("/shop/info")).status, 200);
    }
    for _ in 0..4 {
        assert_eq!(http::get(&apache.url("/e/info")).status, 200);
    }
    assert_eq!(http::get(&apache.url("/blog/info")).status, 200);
    let metrics = parsed_metrics(&apache);
    let get = |sample: &str| {
        *metrics
            .get(sample)
            .unwrap_or_else(|| panic!("{sample} missing from {metrics:#?}"))
    };
    let testapp = artifacts().testapp.display().to_string();
    let app = |mount: &str| format!("library={testapp},mount={mount}");
    assert_eq!(get("rustapp_daemon_requests_total{group=shop}"), 5.0);
    assert_eq!(get("rustapp_daemon_requests_total{group=blog}"), 1.0);
    assert_eq!(get("rustapp_daemon_processes{group=shop}"), 2.0);
    assert_eq!(
        get("rustapp_daemon_errors_total{group=shop,status=502}"),
        0.0
    );
    assert_eq!(
        get(&format!("rustapp_app_requests_total{{{}}}", app("/e"))),
        4.0
    );
    assert_eq!(
        get(&format!("rustapp_app_requests_total{{{}}}", app("/shop"))),
        5.0
    );
    assert_eq!(
        get(&format!(
            "rustapp_app_request_duration_seconds_count{{{}}}",
            app("/e")
        )),
        4.0
    );
    assert_eq!(
        get(&format!(
            "rustapp_app_request_duration_seconds_bucket{{le=+Inf,{}}}",
            app("/e")
        )),
        4.0
    );
    let served: f64 = metrics
        .iter()
        .filter(|(k, _)| k.starts_with("rustapp_daemon_process_requests_total{group=shop,"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(served, 5.0);
}

#[test]
fn a_daemon_cannot_change_another_groups_figures_or_apaches() {
    let apache = start();
    for _ in 0..3 {
        assert_eq!(http::get(&apache.url("/blog/info")).status, 200);
    }
    let before = status(&apache);
    // The shop's application overwrites every writable shared mapping it has: only its own
    // group's process slots are left in its process.
    let scribbled = http::get(&apache.url("/shop/scribble"));
    assert_eq!(scribbled.status, 200);
    assert_eq!(scribbled.field("mappings").as_deref(), Some("1"));
    let after = status(&apache);
    for key in [
        "RustAppGroup.blog.Requests",
        "RustAppGroup.blog.Processes",
        "RustAppGroup.shop.Requests",
        "RustAppApp./blog.Requests",
    ] {
        let expected = number(&before, key) + u64::from(key == "RustAppGroup.shop.Requests");
        assert_eq!(number(&after, key), expected, "{key}: {after:#?}");
    }
    assert_eq!(shown_pids(&after, "blog"), shown_pids(&before, "blog"));
    assert_eq!(served_by(&after, "blog"), served_by(&before, "blog"));
    // What the shop's processes claim about themselves is clamped to what can be true.
    assert!(
        number(&after, "RustAppGroup.shop.BusyThreads") <= 8,
        "{after:#?}"
    );
    assert!(served_by(&after, "shop") <= number(&after, "RustAppGroup.shop.Requests"));
    assert_eq!(shown_pids(&after, "shop"), running_pids(&apache, "shop"));
    // Apache and both groups go on serving.
    for path in ["/shop/info", "/blog/info", "/e/info"] {
        assert_eq!(http::get(&apache.url(path)).status, 200, "{path}");
    }
}

#[test]
fn with_figures_off_nothing_is_shown_and_the_metrics_location_answers_404() {
    let apache = start_with(
        &artifacts().testapp.display().to_string(),
        "RustAppFigures Off\n",
    );
    wait_until_serving(&apache, 3);
    assert_eq!(http::get(&apache.url("/shop/info")).status, 200);
    let status = status(&apache);
    assert!(
        !status.keys().any(|k| k.starts_with("RustApp")),
        "{status:#?}"
    );
    assert_eq!(http::get(&apache.url("/rustapp-metrics")).status, 404);
    assert!(apache.error_log().contains("RustAppFigures Off"));
}

#[test]
fn the_figures_survive_a_graceful_restart_which_shows_as_such() {
    let apache = start();
    for _ in 0..4 {
        assert_eq!(http::get(&apache.url("/shop/info")).status, 200);
    }
    let before = running_pids(&apache, "shop");
    apache.graceful();
    // The new generation's three daemons serve; the old one's three finish.
    wait_until_serving(&apache, 6);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        let status = status(&apache);
        if status["RustAppGroup.blog.Ends"] == "graceful-restart=1"
            && status["RustAppGroup.shop.Ends"] == "graceful-restart=2"
        {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "{status:#?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        number(&status, "RustAppGroup.shop.Requests"),
        4,
        "{status:#?}"
    );
    assert_eq!(number(&status, "RustAppApp./shop.Requests"), 4);
    let after = shown_pids(&status, "shop");
    assert_eq!(after.len(), 2, "{status:#?}");
    assert!(after.is_disjoint(&before));
}
