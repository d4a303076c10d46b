//! examples/usersite served with the configuration users copy (apache-conf/usersite.conf):
//! its SQLite users, created with `usersite-admin`, protect the site's pages and a static
//! directory, and the checks run in the site's daemon, the only process that can read them.

mod support;

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use support::http::{self, Reply};
use support::{Apache, ApacheConfig, artifacts, ensure_user, shared_temp_dir};

const SITE_USER: &str = "rustapp-test-b";

fn admin(db: &Path, args: &[&str], stdin: &str) {
    let mut child = Command::new(artifacts().usersite_admin)
        .arg(db)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run usersite-admin");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "usersite-admin {args:?}: {out:?}");
}

fn get_as(apache: &Apache, path: &str, user: &str, password: &str) -> Reply {
    http::get_as(&apache.url(path), user, password)
}

/// The shipped configuration with the test's paths, user and port.
fn shipped_config(site: &Path) -> String {
    let conf = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("apache-conf/usersite.conf"),
    )
    .unwrap();
    let lib = artifacts().usersite.display().to_string();
    // What Debian's apache2.conf defines and the shipped file relies on.
    let debian = "Define APACHE_LOG_DIR {dir}\n\
        LogFormat \"%h %l %u %t \\\"%r\\\" %>s %O \\\"%{Referer}i\\\" \\\"%{User-Agent}i\\\"\" combined\n";
    format!("{debian}{conf}")
        .replace("/srv/usersite/libusersite.so", &lib)
        .replace("/srv/usersite", &site.display().to_string())
        .replace("user=usersite", &format!("user={SITE_USER}"))
        .replace("<VirtualHost *:80>", "<VirtualHost *>")
}

#[test]
fn the_sites_own_users_protect_its_pages_and_static_files() {
    let uid = ensure_user(SITE_USER);
    let site = shared_temp_dir();
    let db = site.path().join("users.db");
    admin(&db, &["add-user", "alice"], "correct horse\n");
    admin(&db, &["add-group", "alice", "staff"], "");
    admin(&db, &["add-user", "bob"], "battery staple\n");
    // Only the site's user can read the database.
    std::os::unix::fs::chown(&db, Some(uid), None).unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::create_dir(site.path().join("reports")).unwrap();
    std::fs::write(site.path().join("reports/q3.txt"), "numbers\n").unwrap();

    let apache = Apache::start(ApacheConfig::new(&shipped_config(site.path())));

    let guest = http::get(&apache.url("/"));
    assert_eq!(guest.status, 200, "{}", apache.error_log());
    assert!(
        guest.text().starts_with("Hello, guest!"),
        "{}",
        guest.text()
    );

    assert_eq!(http::get(&apache.url("/members/")).status, 401);
    let alice = get_as(&apache, "/members/", "alice", "correct horse");
    assert_eq!(
        (alice.status, alice.text().as_str()),
        (200, "Hello, alice!\n"),
        "{}",
        apache.error_log()
    );
    // Logins are case-insensitive; the stored name is the one Apache records.
    let whoami = get_as(&apache, "/members/whoami", "ALICE", "correct horse");
    assert_eq!(whoami.text(), "user=alice\ngroups=staff\n");
    assert_eq!(get_as(&apache, "/members/", "alice", "wrong").status, 401);
    assert_eq!(get_as(&apache, "/members/", "mallory", "x").status, 401);

    // Static files Apache serves itself, for staff only.
    assert_eq!(http::get(&apache.url("/reports/q3.txt")).status, 401);
    let report = get_as(&apache, "/reports/q3.txt", "alice", "correct horse");
    assert_eq!((report.status, report.text().as_str()), (200, "numbers\n"));
    assert_eq!(
        get_as(&apache, "/reports/q3.txt", "bob", "battery staple").status,
        401,
        "bob is not staff"
    );

    // The database is the site user's alone, so the checks ran in its daemon.
    let meta = std::fs::metadata(&db).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o777), (uid, 0o600));
    // Nothing failed on the way (an instance started needlessly without the site's settings
    // once did, in the daemon).
    let log = apache.error_log();
    let errors: Vec<&str> = log.lines().filter(|l| l.contains(":error]")).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // The virtual host's own access log (the shipped configuration's) records the user.
    let log = std::fs::read_to_string(apache.dir().join("usersite-access.log")).unwrap();
    assert!(log.contains(" alice ["), "{log}");
}

/// Response times must not tell which user names exist: an unknown user costs the same hash
/// verification as a wrong password. Without the decoy hash an unknown user answers about a
/// hundred times faster (no Argon2 at all: 0.7 ms against 27 ms here), so a factor of 3 either
/// way still catches it with room for this machine's noise (fastest-of-11 ratios 0.65-1.04 seen).
#[test]
fn unknown_users_take_as_long_as_wrong_passwords() {
    let uid = ensure_user(SITE_USER);
    let site = shared_temp_dir();
    let db = site.path().join("users.db");
    admin(&db, &["add-user", "alice"], "correct horse\n");
    std::os::unix::fs::chown(&db, Some(uid), None).unwrap();
    let apache = Apache::start(ApacheConfig::new(&shipped_config(site.path())));
    // Warm up: the daemon opens the database on the first check.
    assert_eq!(get_as(&apache, "/members/", "alice", "wrong").status, 401);

    // Alternating, so that whatever else the machine does affects both alike; the fastest of
    // each is its cost (other work on the machine only ever adds time).
    let mut times = [Vec::new(), Vec::new()];
    for _ in 0..11 {
        for (i, user) in ["alice", "nobody"].into_iter().enumerate() {
            let start = Instant::now();
            assert_eq!(get_as(&apache, "/members/", user, "wrong").status, 401);
            times[i].push(start.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let [wrong_password, unknown_user] = times.map(|t| t.into_iter().fold(f64::MAX, f64::min));
    let ratio = unknown_user / wrong_password;
    println!(
        "fastest: wrong password {wrong_password:.1} ms, unknown user {unknown_user:.1} ms (ratio {ratio:.2})"
    );
    assert!(
        (0.33..3.0).contains(&ratio),
        "wrong password {wrong_password:.1} ms vs unknown user {unknown_user:.1} ms"
    );
}
