//! Generates Rust bindings for the httpd and APR headers this machine's Apache was built with,
//! and compiles the small C shim for the parts of httpd's API that are macros.
//!
//! Header locations come from `apxs` and `apr-1-config`, never from hard-coded paths, so the
//! module is built against exactly the Apache that will load it.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn query(tool: &str, args: &[&str]) -> String {
    let output = Command::new(tool).args(args).output().unwrap_or_else(|e| {
        panic!(
            "could not run `{tool}` ({e}); install Apache's development files: \
             apt-get install apache2-dev"
        )
    });
    assert!(
        output.status.success(),
        "`{tool} {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("tool output is UTF-8")
        .trim()
        .to_owned()
}

fn main() {
    let httpd_include = query("apxs", &["-q", "INCLUDEDIR"]);
    let apr_include = query("apr-1-config", &["--includedir"]);
    // The same preprocessor flags Apache was built with, so struct layouts match.
    let apr_cppflags = query("apr-1-config", &["--cppflags"]);
    let clang_args: Vec<String> = [format!("-I{httpd_include}"), format!("-I{apr_include}")]
        .into_iter()
        .chain(apr_cppflags.split_whitespace().map(str::to_owned))
        .collect();

    println!("cargo:rerun-if-changed=src/ffi/wrapper.h");
    println!("cargo:rerun-if-changed=src/ffi/shim.c");

    let bindings = bindgen::Builder::default()
        .header("src/ffi/wrapper.h")
        .clang_args(&clang_args)
        // Without an allowlist libc's `long double` items arrive as u128: a silently wrong ABI.
        .allowlist_function("ap_.*|apr_.*|rustapp_shim_.*")
        .allowlist_type("request_rec|server_rec|conn_rec|module_struct|command_rec|cmd_parms|cmd_how|ap_conf_vector_t|process_rec|unixd_config_rec|apr_proc_t|authn_provider|authz_provider")
        .allowlist_var("MODULE_MAGIC_.*|OK|DECLINED|DONE|HTTP_.*|APLOG_.*|RSRC_CONF|ACCESS_CONF|OR_.*|APR_HOOK_.*|AP_MPMQ_.*|AP_SQ_.*|APR_SUCCESS|AP_CONN_CLOSE|APR_OC_REASON_.*|ap_unixd_config|ap_server_conf|AUTHN_PROVIDER_.*|AUTHZ_PROVIDER_.*|AP_AUTH_INTERNAL_PER_CONF")
        // OK and HTTP_* are unsigned, DECLINED signed, the cookie narrower than its field:
        // make every macro constant a plain signed int so they mix without casts everywhere.
        .default_macro_constant_type(bindgen::MacroTypeVariation::Signed)
        .default_enum_style(bindgen::EnumVariation::Consts)
        .derive_default(true)
        .layout_tests(true)
        .generate()
        .expect("bindgen could not translate the httpd headers");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    bindings
        .write_to_file(out.join("httpd_bindings.rs"))
        .expect("write bindings");

    let mut shim = cc::Build::new();
    shim.file("src/ffi/shim.c")
        .include(&httpd_include)
        .include(&apr_include);
    for flag in apr_cppflags.split_whitespace() {
        shim.flag(flag);
    }
    shim.compile("rustapp_shim");

    // Keep the module mapped until the process exits: thread-local destructors and pool
    // cleanups registered by Rust code must never point into an unmapped image.
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
}
