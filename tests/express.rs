//! `rustapp-express`: one command gives a private Apache serving an application in the
//! foreground; Ctrl-C or SIGTERM stops it and everything it started; bad input stops it
//! before Apache starts.

mod support;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use support::{artifacts, build_c_library, ensure_user, free_port, http, shared_temp_dir};

fn express() -> Command {
    Command::new(artifacts().dir.join("rustapp-express"))
}

/// Whether any process is left in process group `pgid`.
fn group_alive(pgid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks for existence.
    unsafe { libc::kill(-pgid, 0) == 0 }
}

fn wait_for_exit(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// The uid a process runs as.
fn uid_of(pid: i32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The processes in process group `pgid`.
fn group_members(pgid: i32) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    let after = stat
                        .rsplit_once(')')?
                        .1
                        .split_whitespace()
                        .nth(2)?
                        .to_owned();
                    after.parse::<i32>().ok()
                })
                == Some(pgid)
        })
        .collect()
}

/// Serves examples/hello with `start-server`, as `user` (uid) if given, then stops it with
/// `signal` and checks nothing of it is left.
fn serve_and_stop(mode: &[&str], signal: i32, user: Option<u32>) {
    let port = free_port();
    let root = shared_temp_dir();
    let mut command = express();
    command
        .args(["start-server", &artifacts().hello.display().to_string()])
        .args(["--port", &port.to_string(), "--server-root"])
        .arg(root.path())
        .args(mode)
        .process_group(0);
    // The terminal: files the server's user owns (Apache reopens /dev/stderr, which a pipe
    // made by root would refuse to another user).
    let terminal = |name: &str| {
        let path = root.path().join(name);
        let file = std::fs::File::create(&path).unwrap();
        if let Some(uid) = user {
            std::os::unix::fs::chown(&path, Some(uid), None).unwrap();
        }
        (path, file)
    };
    let (stdout_path, stdout) = terminal("stdout");
    let (stderr_path, stderr) = terminal("stderr");
    command.stdout(stdout).stderr(stderr);
    if let Some(uid) = user {
        std::os::unix::fs::chown(root.path(), Some(uid), None).unwrap();
        command.uid(uid).gid(uid).current_dir(root.path());
    }
    let mut child = command.spawn().expect("run rustapp-express");
    let pgid = child.id() as i32;
    let deadline = Instant::now() + Duration::from_secs(20);
    let banner = loop {
        let banner = std::fs::read_to_string(&stdout_path).unwrap();
        if banner.contains("Ctrl-C stops the server.") {
            break banner;
        }
        assert!(
            Instant::now() < deadline,
            "no banner: {banner}\n{}",
            std::fs::read_to_string(&stderr_path).unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        banner.contains(&format!("URL:    http://127.0.0.1:{port}/")),
        "{banner}"
    );
    let expected_mode = if mode.contains(&"--embedded") {
        "embedded in Apache's processes (1 process x 5 threads)"
    } else {
        "daemon group 'express' (1 process x 5 threads)"
    };
    assert!(banner.contains(expected_mode), "{banner}");

    let url = format!("http://127.0.0.1:{port}/");
    let deadline = Instant::now() + Duration::from_secs(20);
    let reply = loop {
        match http::try_get(&url) {
            Ok(reply) => break reply,
            Err(e) if Instant::now() > deadline => panic!("{url} never answered: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    assert_eq!((reply.status, reply.text().as_str()), (200, "Hello World!"));
    // Started as root, Apache's children and the daemons run as www-data; started by anyone
    // else, everything runs as them.
    let members = group_members(pgid);
    assert!(members.len() >= 2, "{members:?}");
    for &pid in members.iter().filter(|&&pid| pid != pgid) {
        assert_eq!(
            uid_of(pid),
            Some(user.unwrap_or(33)),
            "process {pid} of {members:?}"
        );
    }

    // SAFETY: signals the server this test started (Apache runs in rustapp-express's place).
    unsafe { libc::kill(pgid, signal) };
    let status = wait_for_exit(&mut child, Duration::from_secs(20));
    assert!(
        status.is_some(),
        "the server did not stop on signal {signal}"
    );
    // Apache waits for what it started (its children, the daemons) before it exits, so
    // nothing of the server is left the moment it is gone.
    assert!(
        !group_alive(pgid),
        "processes of the server are left behind after signal {signal}"
    );
    assert!(http::try_get(&url).is_err(), "still answering after stop");
}

#[test]
fn start_server_runs_a_daemon_and_stops_on_ctrl_c() {
    serve_and_stop(&[], libc::SIGINT, None);
}

#[test]
fn start_server_as_an_ordinary_user_runs_everything_as_that_user() {
    let uid = ensure_user("rustapp-test-a");
    serve_and_stop(&[], libc::SIGTERM, Some(uid));
}

#[test]
fn start_server_embedded_stops_on_sigterm() {
    serve_and_stop(&["--embedded"], libc::SIGTERM, None);
}

fn refused(args: &[&str]) -> String {
    let out = express().args(args).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("rustapp-express: "), "{stderr}");
    stderr
}

#[test]
fn bad_input_is_one_line_and_a_failure_before_apache_starts() {
    let libs = shared_temp_dir();
    let wrong_abi = build_c_library("wrong_abi", libs.path());
    let root = libs.path().join("never-created");
    let root_arg = root.display().to_string();
    let hello = artifacts().hello.display().to_string();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_port = busy.local_addr().unwrap().port().to_string();
    let cases: [(Vec<&str>, &str); 6] = [
        (
            vec![
                "start-server",
                "/no/such/libapp.so",
                "--server-root",
                &root_arg,
            ],
            "/no/such/libapp.so",
        ),
        (
            vec![
                "start-server",
                wrong_abi.to_str().unwrap(),
                "--server-root",
                &root_arg,
            ],
            "built for application ABI 99.3",
        ),
        (
            vec!["start-server", &hello, "--threads", "0"],
            "from 1 to 256",
        ),
        (
            vec!["start-server", &hello, "--turbo"],
            "unknown option '--turbo'",
        ),
        (vec!["serve", &hello], "unknown command 'serve'"),
        (
            vec!["start-server", &hello, "--port", &busy_port],
            "choose another --port",
        ),
    ];
    for (args, expected) in cases {
        let message = refused(&args);
        assert!(message.contains(expected), "{args:?}: {message}");
    }
    assert!(!root.exists(), "nothing was set up for a refused command");
}

#[test]
fn setup_server_writes_a_configuration_and_apachectl_that_work() {
    let root = shared_temp_dir();
    let statics = shared_temp_dir();
    std::fs::write(statics.path().join("a.txt"), "static\n").unwrap();
    let port = free_port();
    let out = express()
        .args(["setup-server", &artifacts().testapp.display().to_string()])
        .args(["--port", &port.to_string(), "--server-root"])
        .arg(root.path())
        .args([
            "--processes",
            "2",
            "--threads",
            "3",
            "--setting",
            "WHO=setup",
        ])
        .args(["--env", "SITE=express site", "--url-alias", "/static"])
        .arg(statics.path())
        .args([
            "--mount-point",
            "/app",
            "--access-log",
            "--auth-group",
            "staff",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let apachectl = root.path().join("apachectl");
    let run = |action: &str| {
        Command::new(&apachectl)
            .arg(action)
            .output()
            .unwrap_or_else(|e| panic!("apachectl {action}: {e}"))
    };
    let test = run("configtest");
    assert!(test.status.success(), "{test:?}");

    assert!(run("start").status.success());
    let info = wait_for(&format!("http://127.0.0.1:{port}/app/info"), |url| {
        http::get_as(url, "alice", "wonderland")
    });
    assert_eq!(info.field("setting.WHO").as_deref(), Some("setup"));
    assert_eq!(info.field("env.SITE").as_deref(), Some("express site"));
    assert_eq!(info.field("var.REMOTE_USER").as_deref(), Some("alice"));
    let denied = http::get_as(
        &format!("http://127.0.0.1:{port}/app/info"),
        "bob",
        "builder",
    );
    assert_eq!(denied.status, 401);
    let file = http::get(&format!("http://127.0.0.1:{port}/static/a.txt"));
    assert_eq!(file.text(), "static\n");
    // status shows the group's two processes, and the requests the application had.
    let status = express()
        .args(["status", "--server-root"])
        .arg(root.path())
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
    let table = String::from_utf8_lossy(&status.stdout);
    assert!(
        table.contains("daemon group express: 2 of 2 processes, 3 threads each"),
        "{table}"
    );
    assert_eq!(table.matches(" ready ").count(), 2, "{table}");
    assert!(table.contains("application at /app "), "{table}");
    // restart-app replaces the daemon processes, Apache staying up: by the script, and by
    // the command.
    let info_url = format!("http://127.0.0.1:{port}/app/info");
    let daemons = || {
        let pid = |_| http::get_as(&info_url, "alice", "wonderland").field("pid");
        // Two processes: ask a few times to see both.
        (0..8)
            .filter_map(pid)
            .collect::<std::collections::BTreeSet<_>>()
    };
    let before = daemons();
    assert!(run("restart-app").status.success());
    let rolled = wait_until_changed(&before, &daemons);
    let by_command = express()
        .args(["restart-app", "--server-root"])
        .arg(root.path())
        .output()
        .unwrap();
    assert!(by_command.status.success(), "{by_command:?}");
    wait_until_changed(&rolled, &daemons);
    assert!(run("stop").status.success());
    let pid_file = root.path().join("httpd.pid");
    let deadline = Instant::now() + Duration::from_secs(20);
    while pid_file.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!pid_file.exists(), "apachectl stop did not stop the server");
    let log = std::fs::read_to_string(root.path().join("access_log")).unwrap();
    assert!(log.contains(" alice ["), "{log}");
}

/// Waits up to 15 s until none of the `old` daemon processes answers: the new set.
fn wait_until_changed(
    old: &std::collections::BTreeSet<String>,
    daemons: &impl Fn() -> std::collections::BTreeSet<String>,
) -> std::collections::BTreeSet<String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let now = daemons();
        if !now.is_empty() && now.is_disjoint(old) {
            return now;
        }
        assert!(Instant::now() < deadline, "still {now:?}, was {old:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn wait_for(url: &str, get: impl Fn(&str) -> http::Reply) -> http::Reply {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if http::try_get(url).is_ok() {
            let reply = get(url);
            assert_eq!(reply.status, 200, "{}", reply.text());
            return reply;
        }
        assert!(Instant::now() < deadline, "{url} never answered");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn module_config_prints_the_load_line() {
    let out = express().arg("module-config").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let line = String::from_utf8(out.stdout).unwrap();
    let path = line
        .trim()
        .strip_prefix("LoadModule rustapp_module ")
        .expect("a LoadModule line");
    assert!(Path::new(path).is_file(), "{path}");
    assert_eq!(
        PathBuf::from(path),
        artifacts().module.canonicalize().unwrap()
    );
}
