//! Apache's own authentication against an application's user store, through a real Apache:
//! `AuthBasicProvider rustapp`, `AuthDigestProvider rustapp`, `Require rustapp-group`, with
//! the application embedded and in a daemon group. The testapp's store (examples/testapp/src/
//! users.rs) has alice/wonderland (staff, users) and bob/builder (users).

mod support;

use std::process::Command;

use md5::{Digest, Md5};
use support::http::{self, Reply};
use support::{
    Apache, ApacheConfig, artifacts, build_c_library, config_test, ensure_user, shared_temp_dir,
};

const BASIC: &str = "AuthType Basic\n  AuthBasicProvider rustapp\n";

fn get_as(apache: &Apache, path: &str, user: &str, password: &str) -> Reply {
    http::get_as(&apache.url(path), user, password)
}

/// Checks the status of each `(path, user, password, status)` request.
fn expect_statuses(apache: &Apache, cases: &[(&str, &str, &str, u16)]) {
    for &(path, user, password, status) in cases {
        let reply = get_as(apache, path, user, password);
        assert_eq!(
            reply.status,
            status,
            "{user}:{password} {path}: {}",
            reply.text()
        );
    }
}

fn md5_hex(text: &str) -> String {
    Md5::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The application mounted at /app, with /app/members for any of its users and /app/staff for
/// its staff group.
fn protected_app(app_options: &str, extra: &str) -> Apache {
    let lib = artifacts().testapp.display().to_string();
    Apache::start(ApacheConfig::new(&format!(
        "{app_options}\nRustAppAlias /app {lib} {}\n\
         <Location /app/members>\n  {BASIC}  AuthName \"Members\"\n  Require valid-user\n</Location>\n\
         <Location /app/members/pass>\n  RustAppPassAuthorization On\n</Location>\n\
         <Location /app/staff>\n  {BASIC}  AuthName \"Staff\"\n  Require rustapp-group staff admins\n  AuthzSendForbiddenOnFailure On\n</Location>\n\
         {extra}",
        if app_options.contains("RustAppDaemonProcess") {
            "process-group=site"
        } else {
            ""
        }
    )))
}

#[test]
fn basic_authentication_checks_the_applications_users() {
    let apache = protected_app("", "");

    let anonymous = http::get(&apache.url("/app/members/info"));
    assert_eq!(anonymous.status, 401);
    assert_eq!(
        anonymous.header("WWW-Authenticate"),
        Some("Basic realm=\"Members\"")
    );
    for (user, password) in [("mallory", "wonderland"), ("alice", "wrong")] {
        let refused = get_as(&apache, "/app/members/info", user, password);
        assert_eq!(refused.status, 401, "{user}:{password}");
        assert!(refused.header("WWW-Authenticate").is_some());
    }

    let alice = get_as(&apache, "/app/members/info", "alice", "wonderland");
    assert_eq!(alice.status, 200, "{}", alice.text());
    assert_eq!(alice.field("var.REMOTE_USER").as_deref(), Some("alice"));
    assert_eq!(alice.field("var.AUTH_TYPE").as_deref(), Some("Basic"));
    // The password Apache checked is not the application's business unless configured.
    assert_eq!(
        alice.field("lookup.authorization").as_deref(),
        Some("(none)")
    );
    let passed = get_as(&apache, "/app/members/pass/info", "alice", "wonderland");
    assert_eq!(
        passed.field("lookup.authorization"),
        Some(http::basic_credentials("alice", "wonderland"))
    );

    // The store may answer with a canonical name, which becomes REMOTE_USER.
    let bob = get_as(&apache, "/app/members/info", "BOB", "builder");
    assert_eq!(bob.field("var.REMOTE_USER").as_deref(), Some("bob"));
    // Embedded, the check ran in an Apache child, as Apache's user.
    let whoami = get_as(&apache, "/app/members/info", "whoami", "x");
    assert_eq!(whoami.field("var.REMOTE_USER").as_deref(), Some("uid-33"));

    assert!(
        apache.wait_for_access_log(
            "\"GET /app/members/info HTTP/1.1\" 200",
            3,
            std::time::Duration::from_secs(5)
        ),
        "{}",
        apache.access_log()
    );
    let log = apache.access_log();
    assert!(log.contains(" alice ["), "{log}");
    assert!(log.contains(" bob ["), "{log}");
}

#[test]
fn a_failing_or_panicking_check_is_a_500_and_the_next_check_works() {
    let apache = protected_app("", "");
    for user in ["error", "panic"] {
        let failed = get_as(&apache, "/app/members/info", user, "x");
        assert_eq!(failed.status, 500, "{user}");
        let next = get_as(&apache, "/app/members/info", "alice", "wonderland");
        assert_eq!(next.status, 200, "after {user}");
    }
    let log = apache.error_log();
    assert!(
        log.contains("user store failed: the test asked the user store to fail"),
        "{log}"
    );
    assert!(
        log.contains("the test asked the user store to panic"),
        "{log}"
    );
    assert!(log.contains("failed to answer a password check"), "{log}");
}

#[test]
fn groups_decide_with_require_rustapp_group() {
    let apache = protected_app("", "");
    let alice = get_as(&apache, "/app/staff/info", "alice", "wonderland");
    assert_eq!(alice.status, 200, "{}", alice.text());
    // bob is a user but not staff: authenticated, then denied.
    assert_eq!(
        get_as(&apache, "/app/staff/info", "bob", "builder").status,
        403
    );
    assert_eq!(http::get(&apache.url("/app/staff/info")).status, 401);
    // A group lookup that fails is a 500, not a denial.
    assert_eq!(
        get_as(&apache, "/app/staff/info", "nogroups", "x").status,
        500
    );
    assert!(
        apache
            .error_log()
            .contains("the test asked the group lookup to fail")
    );
}

#[test]
fn providers_combine_with_apaches_own() {
    let extra = "\
        <AuthnProviderAlias rustapp site-users>\n</AuthnProviderAlias>\n\
        <Location /app/either>\n  AuthType Basic\n  AuthName \"Either\"\n\
          AuthBasicProvider file site-users\n  AuthUserFile \"{dir}/htpasswd\"\n\
          <RequireAny>\n    Require ip 10.9.9.9\n    Require rustapp-group staff\n    Require user carol\n  </RequireAny>\n\
        </Location>\n\
        <Location /app/local-staff>\n  AuthType Basic\n  AuthName \"Local\"\n  AuthBasicProvider rustapp\n\
          AuthzSendForbiddenOnFailure On\n\
          <RequireAll>\n    Require ip 127.0.0.1\n    Require rustapp-group users\n  </RequireAll>\n\
        </Location>\n\
        <Location /app/remote-staff>\n  AuthType Basic\n  AuthName \"Remote\"\n  AuthBasicProvider rustapp\n\
          AuthzSendForbiddenOnFailure On\n\
          <RequireAll>\n    Require ip 10.0.0.0/8\n    Require rustapp-group staff\n  </RequireAll>\n\
        </Location>\n";
    let apache = protected_app("", extra);
    let made = Command::new("htpasswd")
        .args(["-b", "-c", "-B"])
        .arg(apache.dir().join("htpasswd"))
        .args(["carol", "c-pass"])
        .output()
        .expect("run htpasswd (apache2-utils)");
    assert!(made.status.success(), "{made:?}");

    // The file provider answers for carol, the application (through an alias) for alice.
    let carol = get_as(&apache, "/app/either/info", "carol", "c-pass");
    assert_eq!(carol.status, 200, "{}", carol.text());
    let alice = get_as(&apache, "/app/either/info", "alice", "wonderland");
    assert_eq!(alice.status, 200, "{}", alice.text());
    expect_statuses(
        &apache,
        &[
            ("/app/either/info", "bob", "builder", 401),
            ("/app/either/info", "alice", "wrong", 401),
            ("/app/local-staff/info", "bob", "builder", 200),
            // The address rule fails, so even staff are refused.
            ("/app/remote-staff/info", "alice", "wonderland", 403),
        ],
    );
}

#[test]
fn static_files_are_protected_by_the_applications_users() {
    let lib = artifacts().testapp.display().to_string();
    // No RustAppAlias mounts the library: it is started for its users alone.
    let apache = Apache::start(ApacheConfig::new(&format!(
        "Alias /files \"{{dir}}/files\"\n\
         <Directory \"{{dir}}/files\">\n  {BASIC}  AuthName \"Files\"\n  RustAppAuthUser {lib}\n\
           Require rustapp-group staff\n  AuthzSendForbiddenOnFailure On\n</Directory>\n\
         Alias /shared \"{{dir}}/shared\"\n\
         <Directory \"{{dir}}/shared\">\n  AllowOverride AuthConfig\n  Require all granted\n</Directory>\n"
    )));
    let files = apache.dir().join("files");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(files.join("report.txt"), "quarterly numbers\n").unwrap();
    // An .htaccess may name a user store the server configuration starts.
    let shared = apache.dir().join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::write(shared.join("notes.txt"), "shared notes\n").unwrap();
    std::fs::write(
        shared.join(".htaccess"),
        format!(
            "AuthType Basic\nAuthName \"Shared\"\nAuthBasicProvider rustapp\nRustAppAuthUser {lib}\nRequire valid-user\n"
        ),
    )
    .unwrap();

    assert_eq!(http::get(&apache.url("/files/report.txt")).status, 401);
    let alice = get_as(&apache, "/files/report.txt", "alice", "wonderland");
    assert_eq!(alice.status, 200);
    assert_eq!(alice.text(), "quarterly numbers\n");
    assert_eq!(
        get_as(&apache, "/files/report.txt", "bob", "builder").status,
        403
    );

    assert_eq!(http::get(&apache.url("/shared/notes.txt")).status, 401);
    let bob = get_as(&apache, "/shared/notes.txt", "bob", "builder");
    assert_eq!((bob.status, bob.text().as_str()), (200, "shared notes\n"));

    assert!(
        apache.wait_for_access_log(" 200 ", 2, std::time::Duration::from_secs(5)),
        "{}",
        apache.access_log()
    );
    let log = apache.access_log();
    assert!(
        log.contains("alice [") && log.contains("GET /files/report.txt"),
        "{log}"
    );
}

#[test]
fn digest_authentication_uses_the_stores_realm_hash() {
    let apache = protected_app(
        "",
        "<Location /app/digest>\n  AuthType Digest\n  AuthName \"Digest Realm\"\n\
           AuthDigestProvider rustapp\n  Require valid-user\n</Location>\n",
    );
    let challenge = http::get(&apache.url("/app/digest/info"));
    assert_eq!(challenge.status, 401);
    let header = challenge
        .header("WWW-Authenticate")
        .expect("a digest challenge")
        .to_owned();
    let nonce = header
        .split("nonce=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a nonce");

    let answer = |password: &str| {
        let uri = "/app/digest/info";
        let ha1 = md5_hex(&format!("alice:Digest Realm:{password}"));
        let ha2 = md5_hex(&format!("GET:{uri}"));
        let response = md5_hex(&format!("{ha1}:{nonce}:00000001:0a4f113b:auth:{ha2}"));
        let authorization = format!(
            "Digest username=\"alice\", realm=\"Digest Realm\", nonce=\"{nonce}\", uri=\"{uri}\", \
             algorithm=MD5, response=\"{response}\", qop=auth, nc=00000001, cnonce=\"0a4f113b\""
        );
        http::get_with(&apache.url(uri), &[("Authorization", &authorization)])
    };
    let alice = answer("wonderland");
    assert_eq!(alice.status, 200, "{}", apache.error_log());
    assert_eq!(alice.field("var.REMOTE_USER").as_deref(), Some("alice"));
    assert_eq!(alice.field("var.AUTH_TYPE").as_deref(), Some("Digest"));
    assert_eq!(answer("wrong").status, 401);
}

#[test]
fn in_daemon_mode_the_check_runs_in_the_daemon_as_the_sites_user() {
    let site_user = "rustapp-test-a";
    let uid = ensure_user(site_user);
    let lib = artifacts().testapp.display().to_string();
    let apache = protected_app(
        &format!("RustAppDaemonProcess site user={site_user} home=/tmp threads=4"),
        &format!(
            "Alias /files \"{{dir}}/htdocs\"\n\
             <Location /files>\n  {BASIC}  AuthName \"Files\"\n  RustAppAuthUser {lib} process-group=site\n  Require valid-user\n</Location>\n"
        ),
    );
    std::fs::write(apache.dir().join("htdocs/index.txt"), "hi\n").unwrap();

    let whoami = get_as(&apache, "/app/members/info", "whoami", "x");
    assert_eq!(whoami.status, 200, "{}", apache.error_log());
    assert_eq!(whoami.field("var.REMOTE_USER"), Some(format!("uid-{uid}")));
    assert_eq!(whoami.field("uid"), Some(uid.to_string()));

    expect_statuses(
        &apache,
        &[
            ("/app/members/info", "alice", "wrong", 401),
            ("/app/staff/info", "alice", "wonderland", 200),
            ("/app/staff/info", "bob", "builder", 403),
        ],
    );
    for user in ["error", "panic"] {
        assert_eq!(get_as(&apache, "/app/members/info", user, "x").status, 500);
        assert_eq!(
            get_as(&apache, "/app/members/info", "alice", "wonderland").status,
            200,
            "after {user}"
        );
    }
    // The application's own log lines about the check come back from the daemon.
    let log = apache.error_log();
    assert!(log.contains("checking alice from 127.0.0.1"), "{log}");
    assert!(
        log.contains("the test asked the user store to panic"),
        "{log}"
    );

    // A static file checked against the daemon's store: %u shows who the daemon granted.
    let file = get_as(&apache, "/files/index.txt", "whoami", "x");
    assert_eq!((file.status, file.text().as_str()), (200, "hi\n"));
    assert!(
        apache.wait_for_access_log(
            &format!("uid-{uid} ["),
            2,
            std::time::Duration::from_secs(5)
        ),
        "{}",
        apache.access_log()
    );
}

#[test]
fn applications_without_a_user_store_serve_and_say_why_a_check_fails() {
    let libs = shared_temp_dir();
    // A C application with ABI 1.1's entry points left NULL, the same built against ABI 1.0
    // (a shorter table), and a Rust application that does not implement `App::users`.
    let c_app = build_c_library("hello", libs.path());
    let old_c_app = build_c_library("abi_1_0", libs.path());
    let rust_app = artifacts().hello;
    let mut directives = String::new();
    for (mount, lib) in [("/c", &c_app), ("/old", &old_c_app), ("/rust", &rust_app)] {
        directives += &format!(
            "RustAppAlias {mount} {}\n<Location {mount}/private>\n  {BASIC}  AuthName \"x\"\n  Require valid-user\n</Location>\n",
            lib.display()
        );
    }
    let apache = Apache::start(ApacheConfig::new(&directives));
    for mount in ["/c", "/old", "/rust"] {
        let open = http::get(&apache.url(mount));
        assert_eq!(open.status, 200, "{mount}: {}", open.text());
        let url = format!("{mount}/private");
        assert_eq!(get_as(&apache, &url, "alice", "x").status, 500, "{url}");
    }
    let log = apache.error_log();
    for lib in [&c_app, &old_c_app, &rust_app] {
        let line = format!(
            "application {} at /", // followed by the mount point
            lib.display()
        );
        assert!(
            log.lines().any(|l| l.contains(&line)
                && l.contains("cannot answer a password check: it has no user store")),
            "no line for {}:\n{log}",
            lib.display()
        );
    }
}

#[test]
fn configuration_mistakes_fail_the_configuration_test() {
    let lib = artifacts().testapp.display().to_string();
    let cases = [
        (
            "<Location /x>\n  RustAppAuthUser /no/such/libsite.so\n</Location>".to_owned(),
            "/no/such/libsite.so",
        ),
        (
            format!("<Location /x>\n  RustAppAuthUser {lib} threads=2\n</Location>"),
            "allowed: process-group=NAME",
        ),
        (
            format!("<Location /x>\n  RustAppAuthGroup {lib} process-group=nowhere\n</Location>"),
            "names process-group=nowhere, which no RustAppDaemonProcess defines",
        ),
        (
            format!(
                "<Location /x>\n  RustAppAuthUser {lib}\n  AuthType Basic\n  AuthName x\n  Require rustapp-group\n</Location>"
            ),
            "needs at least one group name",
        ),
    ];
    for (directives, expected) in cases {
        let test = config_test(&ApacheConfig::new(&directives));
        assert!(!test.ok, "apache2 -t passed:\n{directives}");
        assert!(
            test.output.contains(expected),
            "{directives}\n{}",
            test.output
        );
    }
    let fine = format!(
        "<Location /x>\n  AuthType Basic\n  AuthName x\n  AuthBasicProvider rustapp\n  RustAppAuthUser {lib}\n  Require rustapp-group staff admins\n</Location>"
    );
    let test = config_test(&ApacheConfig::new(&fine));
    assert!(test.ok, "{}", test.output);
}

/// With mod_authn_socache in front (`AuthnCacheProvideFor rustapp`), a user's check reaches the
/// application once per cache lifetime, not on every request: what keeps a slow password hash
/// affordable for pages with many protected assets.
#[test]
fn mod_authn_socache_caches_the_applications_answers() {
    let modules = "/usr/lib/apache2/modules";
    let apache = protected_app(
        "",
        &format!(
            "LoadModule socache_shmcb_module {modules}/mod_socache_shmcb.so\n\
             LoadModule authn_socache_module {modules}/mod_authn_socache.so\n\
             AuthnCacheSOCache shmcb\n\
             <Location /app/cached>\n  AuthType Basic\n  AuthName \"Cached\"\n\
               AuthBasicProvider socache rustapp\n  AuthnCacheProvideFor rustapp\n  Require valid-user\n</Location>\n"
        ),
    );
    let checks = |user: &str| {
        let log = apache.error_log();
        log.matches(&format!("checking {user} from")).count()
    };
    for _ in 0..3 {
        let alice = get_as(&apache, "/app/cached/info", "alice", "wonderland");
        assert_eq!(alice.field("var.REMOTE_USER").as_deref(), Some("alice"));
    }
    assert_eq!(checks("alice"), 1, "{}", apache.error_log());
    // The cache verifies passwords itself.
    expect_statuses(&apache, &[("/app/cached/info", "alice", "wrong", 401)]);
    // A user the store renames is not cached: a cache hit could not rename them.
    for _ in 0..2 {
        let bob = get_as(&apache, "/app/cached/info", "BOB", "builder");
        assert_eq!(bob.field("var.REMOTE_USER").as_deref(), Some("bob"));
    }
    assert_eq!(checks("BOB"), 2);
}
