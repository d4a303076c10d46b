//! Test support: a real Debian `apache2` started from a generated configuration on a free
//! loopback port, and small helpers to talk to it and read what it logged.
#![allow(dead_code)] // each test binary uses a different part of this

pub mod http;

use std::fs;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The built module and example applications (built by `cargo build --workspace` in the same
/// profile as the tests; the README's test command does both).
pub struct Artifacts {
    pub module: PathBuf,
    pub hello: PathBuf,
    pub testapp: PathBuf,
    pub axum_site: PathBuf,
    pub composed: PathBuf,
    pub usersite: PathBuf,
    /// examples/usersite's tool for its user database.
    pub usersite_admin: PathBuf,
    /// The directory the artifacts are in (`target/<profile>`).
    pub dir: PathBuf,
}

pub fn artifacts() -> Artifacts {
    // target/<profile>/deps/<test binary> -> target/<profile>
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target directory")
        .to_path_buf();
    let find = |name: &str| {
        let path = dir.join(name);
        assert!(
            path.is_file(),
            "{} is missing: build the workspace in this profile first (`cargo build --workspace --release`), as the README's test command does",
            path.display()
        );
        path
    };
    Artifacts {
        module: find("libmod_rustapp.so"),
        hello: find("libhello.so"),
        testapp: find("libtestapp.so"),
        axum_site: find("libaxum_site.so"),
        composed: find("libcomposed.so"),
        usersite: find("libusersite.so"),
        usersite_admin: find("usersite-admin"),
        dir: dir.clone(),
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Mpm {
    Event,
    Worker,
    Prefork,
}

impl Mpm {
    fn name(self) -> &'static str {
        match self {
            Mpm::Event => "event",
            Mpm::Worker => "worker",
            Mpm::Prefork => "prefork",
        }
    }

    fn settings(self, processes: u32, threads: u32) -> String {
        match self {
            Mpm::Event | Mpm::Worker => format!(
                "StartServers {processes}\nServerLimit {processes}\nThreadsPerChild {threads}\nThreadLimit {threads}\n\
                 MinSpareThreads 1\nMaxSpareThreads {max}\nMaxRequestWorkers {max}\nMaxConnectionsPerChild 0\n",
                max = processes * threads
            ),
            Mpm::Prefork => format!(
                "StartServers {processes}\nMinSpareServers 1\nMaxSpareServers {max}\nServerLimit {max}\n\
                 MaxRequestWorkers {max}\nMaxConnectionsPerChild 0\n",
                max = processes * 4
            ),
        }
    }
}

/// What to start Apache with: the MPM, how many child processes, and the directives under test.
pub struct ApacheConfig {
    mpm: Mpm,
    processes: u32,
    /// Threads per child (event and worker MPMs).
    threads: u32,
    directives: String,
    /// Whether the configuration loads the module built in this profile itself (not when the
    /// directives load an installed one).
    loads_module: bool,
}

impl ApacheConfig {
    /// `{dir}` in `directives` stands for the server root (a fresh temporary directory).
    pub fn new(directives: &str) -> ApacheConfig {
        ApacheConfig {
            mpm: Mpm::Event,
            processes: 2,
            threads: 16,
            directives: directives.to_owned(),
            loads_module: true,
        }
    }

    /// The directives load mod_rustapp themselves (an installed `rustapp.load`).
    pub fn without_module(mut self) -> ApacheConfig {
        self.loads_module = false;
        self
    }

    pub fn mpm(mut self, mpm: Mpm) -> ApacheConfig {
        self.mpm = mpm;
        self
    }

    /// One child process, so that its memory can be watched.
    pub fn processes(mut self, processes: u32) -> ApacheConfig {
        self.processes = processes;
        self
    }

    /// Threads per child, for tests that hold many connections (event and worker MPMs).
    pub fn threads(mut self, threads: u32) -> ApacheConfig {
        self.threads = threads;
        self
    }

    fn render(&self, dir: &Path, port: u16) -> String {
        let a = artifacts();
        let d = dir.display();
        let user = if is_root() {
            "User www-data\nGroup www-data\n"
        } else {
            ""
        };
        let modules: String = [
            "authz_core",
            "authz_host",
            "authz_user",
            "authn_core",
            "authn_file",
            "auth_basic",
            "auth_digest",
            "env",
            "mime",
            "alias",
            "setenvif",
        ]
        .iter()
        .map(|m| load_module(m))
        .collect();
        format!(
            "ServerRoot \"{d}\"\nDefaultRuntimeDir \"{d}\"\nPidFile \"{d}/httpd.pid\"\nMutex file:{d} default\n\
             Listen 127.0.0.1:{port}\nServerName 127.0.0.1\n{user}\
             LoadModule mpm_{mpm}_module /usr/lib/apache2/modules/mod_mpm_{mpm}.so\n{modules}\
             {load_module}\
             TypesConfig /etc/mime.types\nErrorLog \"{d}/error.log\"\nLogLevel info\n\
             LogFormat \"%h %l %u %t \\\"%r\\\" %>s %b\" common\nCustomLog \"{d}/access.log\" common\n\
             Timeout 30\nKeepAlive On\nGracefulShutdownTimeout 10\n{mpm_settings}\
             DocumentRoot \"{d}/htdocs\"\n<Directory />\n  Require all denied\n</Directory>\n\
             <Directory \"{d}/htdocs\">\n  Require all granted\n</Directory>\n\n{directives}\n",
            mpm = self.mpm.name(),
            load_module = if self.loads_module {
                format!("LoadModule rustapp_module \"{}\"\n", a.module.display())
            } else {
                String::new()
            },
            mpm_settings = self.mpm.settings(self.processes, self.threads),
            directives = self.directives.replace("{dir}", &d.to_string()),
        )
    }
}

/// The directive that loads one of Debian's Apache modules (`http2`, `ssl`, ...).
pub fn load_module(module: &str) -> String {
    format!("LoadModule {module}_module /usr/lib/apache2/modules/mod_{module}.so\n")
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A private directory Apache's children (running as www-data) can read.
fn server_root() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("rustapp-test-")
        .tempdir()
        .expect("temp dir");
    set_mode(dir.path(), 0o755);
    fs::create_dir(dir.path().join("htdocs")).unwrap();
    fs::write(dir.path().join("htdocs/static.txt"), "static file\n").unwrap();
    dir
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// The result of `apache2 -t`.
pub struct ConfigTest {
    pub ok: bool,
    pub output: String,
}

/// Runs `apache2 -t` on a configuration, as an admin would before a restart.
pub fn config_test(config: &ApacheConfig) -> ConfigTest {
    let dir = server_root();
    let conf = dir.path().join("httpd.conf");
    fs::write(&conf, config.render(dir.path(), free_port())).unwrap();
    let out = Command::new("apache2")
        .arg("-t")
        .arg("-f")
        .arg(&conf)
        .output()
        .expect("run apache2 -t");
    ConfigTest {
        ok: out.status.success(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// A running Apache. Stopped (and waited for) when dropped.
pub struct Apache {
    dir: tempfile::TempDir,
    pub port: u16,
    parent: Child,
}

impl Apache {
    pub fn start(config: ApacheConfig) -> Apache {
        let mut last_failure = String::new();
        for _attempt in 0..3 {
            match Apache::try_start(&config) {
                Ok(apache) => return apache,
                Err(failure) if failure.contains("Address already in use") => {
                    last_failure = failure
                }
                Err(failure) => panic!("Apache did not start:\n{failure}"),
            }
        }
        panic!("Apache did not start (port races):\n{last_failure}")
    }

    fn try_start(config: &ApacheConfig) -> Result<Apache, String> {
        let dir = server_root();
        let port = free_port();
        let conf = dir.path().join("httpd.conf");
        fs::write(&conf, config.render(dir.path(), port)).unwrap();
        let stderr = fs::File::create(dir.path().join("stderr.log")).unwrap();
        // Its own process group: prefork signals its whole group on shutdown
        // (`killpg(getpgrp(), SIGTERM)`), which would otherwise include this test.
        let parent = Command::new("apache2")
            .process_group(0)
            .arg("-f")
            .arg(&conf)
            .arg("-DFOREGROUND")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("cannot run apache2: {e}"))?;
        let mut apache = Apache { dir, port, parent };
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = apache.parent.try_wait() {
                return Err(format!(
                    "apache2 exited with {status}\n{}",
                    apache.diagnostics()
                ));
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok()
                && apache.dir.path().join("httpd.pid").exists()
            {
                return Ok(apache);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "apache2 did not listen within 15 s\n{}",
            apache.diagnostics()
        ))
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn error_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    pub fn access_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }

    fn diagnostics(&self) -> String {
        let stderr = fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default();
        format!(
            "--- stderr ---\n{stderr}\n--- error.log ---\n{}",
            self.error_log()
        )
    }

    /// Waits until the error log contains `needle` `count` times.
    pub fn wait_for_log(&self, needle: &str, count: usize, timeout: Duration) -> bool {
        self.wait_for(Apache::error_log, needle, count, timeout)
    }

    /// Waits until the access log contains `needle` `count` times (Apache writes a request's
    /// line after its response).
    pub fn wait_for_access_log(&self, needle: &str, count: usize, timeout: Duration) -> bool {
        self.wait_for(Apache::access_log, needle, count, timeout)
    }

    fn wait_for(
        &self,
        log: fn(&Apache) -> String,
        needle: &str,
        count: usize,
        timeout: Duration,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if log(self).matches(needle).count() >= count {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn parent_pid(&self) -> u32 {
        self.parent.id()
    }

    /// `apachectl graceful`: the parent re-reads its configuration and replaces its children
    /// while they finish their requests.
    pub fn graceful(&self) {
        // SAFETY: signalling the Apache parent this test started.
        unsafe { libc::kill(self.parent.id() as i32, libc::SIGUSR1) };
    }

    /// The process that answers testapp's info at `path` (a daemon's, in daemon mode).
    pub fn info_pid(&self, path: &str) -> u32 {
        http::get(&self.url(path))
            .field("pid")
            .expect("testapp's info names its process")
            .parse()
            .unwrap()
    }

    /// Pids of the parent's child processes (the ones serving requests).
    pub fn child_pids(&self) -> Vec<u32> {
        let parent = self.parent.id().to_string();
        fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                fs::read_to_string(format!("/proc/{pid}/stat"))
                    .ok()
                    .and_then(|stat| stat.rsplit(')').next().map(str::to_owned))
                    .and_then(|rest| rest.split_whitespace().nth(1).map(|ppid| ppid == parent))
                    .unwrap_or(false)
            })
            .collect()
    }
}

/// Resident and peak resident memory of a process, in KiB.
pub fn memory_kib(pid: u32) -> (u64, u64) {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

impl Drop for Apache {
    fn drop(&mut self) {
        // SAFETY: stopping the Apache parent this test started.
        unsafe { libc::kill(self.parent.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.parent.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.parent.kill();
        let _ = self.parent.wait();
    }
}

/// Reads a whole stream into memory (for small responses).
pub fn read_all(mut reader: impl Read) -> std::io::Result<Vec<u8>> {
    let mut data = Vec::new();
    reader.read_to_end(&mut data)?;
    Ok(data)
}

/// Compiles one of `tests/c_apps/*.c` into a shared library against `sdk/include/rustapp.h`.
pub fn build_c_library(name: &str, out_dir: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = out_dir.join(format!("lib{name}.so"));
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-Wall", "-Werror", "-o"])
        .arg(&output)
        .arg(root.join(format!("tests/c_apps/{name}.c")))
        .arg("-I")
        .arg(root.join("sdk/include"))
        .status()
        .expect("run cc");
    assert!(status.success(), "cc failed for {name}.c");
    output
}

/// A directory for test-built libraries that Apache's children can read.
pub fn shared_temp_dir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("rustapp-libs-")
        .tempdir()
        .expect("temp dir");
    set_mode(dir.path(), 0o755);
    dir
}

/// A system user for daemon processes to run as, created if missing (tests run as root).
pub fn ensure_user(name: &str) -> u32 {
    assert!(
        is_root(),
        "daemon mode tests start Apache as root so daemons can run as other users: run them as root (CI does)"
    );
    let exists = Command::new("id")
        .arg("-u")
        .arg(name)
        .output()
        .expect("run id");
    if !exists.status.success() {
        let status = Command::new("useradd")
            .args([
                "--system",
                "--shell",
                "/usr/sbin/nologin",
                "--home-dir",
                "/nonexistent",
                name,
            ])
            .status()
            .expect("run useradd");
        assert!(status.success(), "useradd {name} failed");
    }
    let out = Command::new("id")
        .arg("-u")
        .arg(name)
        .output()
        .expect("run id");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a uid")
}

/// A self-signed certificate for 127.0.0.1 in `dir`: (certificate, key), PEM files.
pub fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let status = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=127.0.0.1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .expect("run openssl");
    assert!(status.success(), "openssl could not make a certificate");
    (cert, key)
}
