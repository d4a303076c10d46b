//! Behind a TLS-terminating proxy: from a peer in `RustAppTrustedProxies`, the headers in
//! `RustAppTrustedProxyHeaders` give the application the client's address, scheme, host and
//! port; from anyone else they are removed before it sees them. With mod_remoteip too. Both
//! modes, through the axum site's `/whoami` (`rustapp::tower::RequestInfo`).

mod support;

use support::http;
use support::{Apache, ApacheConfig, artifacts, ensure_user};

const USER: &str = "rustapp-test-a";

fn site(trust: &str) -> Apache {
    ensure_user(USER);
    let lib = artifacts().axum_site.display().to_string();
    Apache::start(ApacheConfig::new(&format!(
        "LoadModule remoteip_module /usr/lib/apache2/modules/mod_remoteip.so\n\
         {trust}\n\
         RustAppDaemonProcess proxied threads=2 user={USER} home=/\n\
         RustAppAlias /e {lib}\n\
         RustAppAlias /d {lib} process-group=proxied"
    )))
}

fn whoami(apache: &Apache, mount: &str, headers: &[(&str, &str)]) -> serde_like::Json {
    let reply = http::get_with(&apache.url(&format!("{mount}/whoami")), headers);
    assert_eq!(reply.status, 200, "{}", reply.text());
    serde_like::Json(reply.text())
}

/// Just enough JSON reading for flat answers.
mod serde_like {
    pub struct Json(pub String);

    impl Json {
        /// The raw JSON text of `key`'s value.
        pub fn get(&self, key: &str) -> String {
            let needle = format!("\"{key}\":");
            let at = self
                .0
                .find(&needle)
                .unwrap_or_else(|| panic!("no {key} in {}", self.0));
            let rest = &self.0[at + needle.len()..];
            let end = match rest.strip_prefix('"') {
                Some(quoted) => quoted.find('"').unwrap() + 2,
                None => rest.find([',', '}']).unwrap(),
            };
            rest[..end].to_owned()
        }
    }
}

const FORWARDED: [(&str, &str); 4] = [
    ("X-Forwarded-For", "203.0.113.9, 127.0.0.1"),
    ("X-Forwarded-Proto", "https"),
    ("X-Forwarded-Host", "shop.example"),
    ("X-Forwarded-Port", "8443"),
];

#[test]
fn a_trusted_proxy_tells_the_client_scheme_host_and_port_in_both_modes() {
    let apache = site(
        "RustAppTrustedProxies 127.0.0.1 10.0.0.0/8\n\
         RustAppTrustedProxyHeaders X-Forwarded-For X-Forwarded-Proto X-Forwarded-Host X-Forwarded-Port Forwarded",
    );
    for mount in ["/e", "/d"] {
        let seen = whoami(&apache, mount, &FORWARDED);
        // The proxies in the chain are skipped: the client is the nearest untrusted hop.
        assert_eq!(seen.get("remote_ip"), "\"203.0.113.9\"", "{mount}");
        assert_eq!(seen.get("https"), "true", "{mount}");
        assert_eq!(seen.get("scheme"), "\"https\"", "{mount}");
        assert_eq!(seen.get("host"), "\"shop.example\"", "{mount}");
        assert_eq!(seen.get("port"), "8443", "{mount}");
        assert_eq!(seen.get("host_header"), "\"shop.example\"", "{mount}");
        // RFC 7239's header, alone.
        let seen = whoami(
            &apache,
            mount,
            &[("Forwarded", "for=192.0.2.60;proto=https;host=f.example")],
        );
        assert_eq!(seen.get("remote_ip"), "\"192.0.2.60\"", "{mount}");
        assert_eq!(seen.get("scheme"), "\"https\"", "{mount}");
        assert_eq!(seen.get("host"), "\"f.example\"", "{mount}");
        assert_eq!(seen.get("port"), "443", "{mount}");
    }
}

#[test]
fn anyone_else_cannot_claim_them_and_mod_remoteip_still_works() {
    let apache = site(
        "RustAppTrustedProxies 10.0.0.0/8\n\
         RustAppTrustedProxyHeaders X-Forwarded-For X-Forwarded-Proto X-Forwarded-Host X-Forwarded-Port\n\
         RemoteIPHeader X-Real-Client\nRemoteIPInternalProxy 127.0.0.1",
    );
    for mount in ["/e", "/d"] {
        let mut headers = FORWARDED.to_vec();
        headers.push(("X-Real-Client", "192.0.2.44"));
        let seen = whoami(&apache, mount, &headers);
        assert_eq!(seen.get("https"), "false", "{mount}");
        assert_eq!(seen.get("scheme"), "\"http\"", "{mount}");
        assert_eq!(seen.get("host"), "\"127.0.0.1\"", "{mount}");
        assert!(
            seen.get("host_header").starts_with("\"127.0.0.1:"),
            "{mount}"
        );
        // The untrusted copies are gone, not merely ignored.
        assert_eq!(seen.get("x_forwarded_proto"), "null", "{mount}");
        // mod_remoteip, trusting this peer for its own header, set the client's address.
        assert_eq!(seen.get("remote_ip"), "\"192.0.2.44\"", "{mount}");
    }
}

#[test]
fn bad_proxy_directives_fail_the_configuration_test_saying_why() {
    for (directive, says) in [
        (
            "RustAppTrustedProxies 10.0.0.0/33",
            "'10.0.0.0/33' is not an IP address or network",
        ),
        (
            "RustAppTrustedProxyHeaders X-Real-IP",
            "'X-Real-IP' is not a header it knows; allowed: X-Forwarded-For",
        ),
        (
            "RustAppMaxTunnels 0",
            "RustAppMaxTunnels: '0' is not a whole number",
        ),
    ] {
        let test = support::config_test(&ApacheConfig::new(directive));
        assert!(!test.ok, "{directive} passed apache2 -t");
        assert!(test.output.contains(says), "{directive}: {}", test.output);
    }
}
