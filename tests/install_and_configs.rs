//! What admins copy and run: every shipped configuration file is accepted by `apache2 -t`,
//! `scripts/install` puts a working module where `a2enmod rustapp` finds it, and the Docker
//! image's health check tells a serving Apache from a dead one.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::{Apache, ApacheConfig, artifacts, config_test, ensure_user, free_port, http};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The `.conf` files in `dir` (a directory of the repository).
fn conf_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .collect();
    files.sort();
    files
}

/// A shipped file as this machine can load it: each `/srv/SITE/libNAME.so` becomes the
/// library built here, other `/srv/` paths go below the server root, each site user is a test
/// user, and what Debian's apache2.conf defines
/// (`APACHE_LOG_DIR`, the `combined` format) is defined.
fn localized(text: &str) -> String {
    let built = artifacts().dir;
    let mut out = String::from(
        "Define APACHE_LOG_DIR {dir}\n\
         LogFormat \"%h %l %u %t \\\"%r\\\" %>s %O\" combined\n",
    );
    for line in text.lines() {
        let mut line = line.replace("<VirtualHost *:80>", "<VirtualHost *>");
        let mut from = 0;
        while let Some(found) = line[from..].find("/srv/") {
            let start = from + found;
            let end = line[start..]
                .find(|c: char| c.is_whitespace() || c == '"')
                .map_or(line.len(), |i| start + i);
            let path = &line[start..end];
            let local = if path.ends_with(".so") {
                built.join(Path::new(path).file_name().unwrap())
            } else {
                // Directories and files the site would have: under the server root here.
                PathBuf::from(format!("{{dir}}{path}"))
            };
            let local = local.display().to_string();
            line.replace_range(start..end, &local);
            from = start + local.len();
        }
        for user in ["usersite", "shop", "blog", "hello", "grpc"] {
            line = line.replace(&format!("user={user} "), "user=rustapp-test-a ");
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[test]
fn every_shipped_configuration_passes_the_configuration_test() {
    ensure_user("rustapp-test-a");
    let files: Vec<PathBuf> = conf_files("apache-conf")
        .into_iter()
        .chain(conf_files("docker"))
        .collect();
    assert!(files.len() >= 5, "{files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let test = config_test(&ApacheConfig::new(&localized(&text)));
        assert!(
            test.ok,
            "{} fails apache2 -t:\n{}",
            file.display(),
            test.output
        );
    }
}

#[test]
fn installed_files_enabled_with_a2enmod_serve() {
    let root = support::shared_temp_dir();
    let install = Command::new(repo().join("scripts/install"))
        .arg("--root")
        .arg(root.path())
        .arg("--from")
        .arg(artifacts().dir)
        .output()
        .unwrap();
    assert!(install.status.success(), "{install:?}");
    let confdir = root.path().join("etc/apache2");
    std::fs::create_dir_all(confdir.join("mods-enabled")).unwrap();
    let a2enmod = Command::new("a2enmod")
        .arg("rustapp")
        .env("APACHE_CONFDIR", &confdir)
        .output()
        .unwrap();
    assert!(a2enmod.status.success(), "{a2enmod:?}");
    for name in ["rustapp.load", "rustapp.conf"] {
        let link = std::fs::read_link(confdir.join("mods-enabled").join(name)).unwrap();
        assert_eq!(link, Path::new("../mods-available").join(name));
    }
    for installed in [
        "usr/local/bin/rustapp-express",
        "usr/local/include/rustapp.h",
        "usr/local/share/doc/mod_rustapp/examples/usersite.conf",
    ] {
        assert!(root.path().join(installed).is_file(), "{installed}");
    }

    // The enabled files, and nothing else of ours, load the module.
    let enabled = format!(
        "Include {d}/mods-enabled/*.load\nInclude {d}/mods-enabled/*.conf\nRustAppAlias /hello {}",
        artifacts().hello.display(),
        d = confdir.display()
    );
    let config = ApacheConfig::new(&enabled).without_module();
    let test = config_test(&config);
    assert!(test.ok, "{}", test.output);
    let apache = Apache::start(config);
    assert_eq!(http::get(&apache.url("/hello")).text(), "Hello World!");
}

#[test]
fn the_images_health_check_tells_serving_from_down() {
    ensure_user("rustapp-test-a");
    let check = |port: &str| {
        Command::new(repo().join("docker/healthcheck"))
            .env("HEALTH_PORT", port)
            .output()
            .unwrap()
            .status
            .success()
    };
    let serve = |options: &str| {
        Apache::start(ApacheConfig::new(&format!(
            "RustAppDaemonProcess site threads=2 user=rustapp-test-a home=/tmp\n\
             RustAppAlias / {} process-group=site {options}",
            artifacts().testapp.display()
        )))
    };
    let port_of = |apache: &Apache| apache.port().to_string();

    let serving = serve("");
    assert!(check(&port_of(&serving)), "a serving site is unhealthy");
    // Apache answers, but the application cannot: unhealthy.
    let broken = serve("setting=FAIL_TO_START=1");
    assert!(!check(&port_of(&broken)), "healthy while answering 500");
    assert!(
        !check(&free_port().to_string()),
        "healthy with nothing listening"
    );
}
