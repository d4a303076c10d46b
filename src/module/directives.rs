//! The directive table, and which configuration parser each directive runs.

use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::config::{
    self, ConfigTables, DirConfig, GroupNames, ServerConfig, parse_user_store_ref,
    register_user_store,
};
use crate::ffi::{Args, Cmd, CommandTable, Context, END_OF_TABLE, Takes, directive};

use super::RustApp;

const ALIAS: usize = 0;
const SETTING: usize = 1;
const PASS_AUTHORIZATION: usize = 2;
const DAEMON_PROCESS: usize = 3;
const PROCESS_GROUP: usize = 4;
const RESTRICT_EMBEDDED: usize = 5;
const SOCKET_PREFIX: usize = 6;
const AUTH_USER: usize = 7;
const AUTH_GROUP: usize = 8;
const STREAM_IDLE_TIMEOUT: usize = 9;
const BUFFER_REQUEST_BODY: usize = 10;
const MAX_TUNNELS: usize = 11;
const TRUSTED_PROXIES: usize = 12;
const TRUSTED_PROXY_HEADERS: usize = 13;
const ERROR_OVERRIDE: usize = 14;
const SENDFILE_ROOT: usize = 15;
const SLOW_REQUEST_LOG: usize = 16;
const FIGURES: usize = 17;

/// Entries in the table, with the end marker.
pub(super) const COUNT: usize = 19;

const SERVER: Context = Context::SERVER;
const SERVER_OR_SECTION: Context = Context::SERVER.and(Context::SECTION);
const AUTH_CONFIG: Context = Context::SECTION.and(Context::HTACCESS_AUTHCONFIG);

pub(super) static COMMANDS: CommandTable<COUNT> = CommandTable::new([
    directive::<RustApp>(
        c"RustAppAlias",
        Takes::Words,
        SERVER,
        ALIAS,
        c"RustAppAlias URL-path /path/to/libapp.so [setting=NAME=VALUE ...] [process-group=NAME]: serve an application library at a URL path",
    ),
    directive::<RustApp>(
        c"RustAppSetting",
        Takes::Two,
        SERVER,
        SETTING,
        c"RustAppSetting NAME VALUE: a setting for the applications of this server or virtual host",
    ),
    directive::<RustApp>(
        c"RustAppPassAuthorization",
        Takes::Flag,
        SERVER_OR_SECTION.and(Context::HTACCESS_AUTHCONFIG),
        PASS_AUTHORIZATION,
        c"RustAppPassAuthorization On|Off: whether applications see the Authorization header (default Off)",
    ),
    directive::<RustApp>(
        c"RustAppDaemonProcess",
        Takes::Words,
        SERVER,
        DAEMON_PROCESS,
        c"RustAppDaemonProcess NAME [processes=N threads=N user=NAME group=NAME home=DIR umask=0NNN display-name=NAME env=K=V env-file=PATH connect-timeout=S socket-timeout=S listen-backlog=N]: a group of daemon processes",
    ),
    directive::<RustApp>(
        c"RustAppProcessGroup",
        Takes::One,
        SERVER_OR_SECTION,
        PROCESS_GROUP,
        c"RustAppProcessGroup NAME: run the applications of this server or location in daemon group NAME",
    ),
    directive::<RustApp>(
        c"RustAppRestrictEmbedded",
        Takes::Flag,
        SERVER,
        RESTRICT_EMBEDDED,
        c"RustAppRestrictEmbedded On|Off: refuse to run applications inside Apache's own processes (default Off)",
    ),
    directive::<RustApp>(
        c"RustAppFigures",
        Takes::Flag,
        SERVER,
        FIGURES,
        c"RustAppFigures On|Off: keep figures of daemon groups and applications for mod_status and the rustapp-metrics handler (default On; main server only)",
    ),
    directive::<RustApp>(
        c"RustAppSocketPrefix",
        Takes::One,
        SERVER,
        SOCKET_PREFIX,
        c"RustAppSocketPrefix DIR: where daemon groups' sockets go (default: DefaultRuntimeDir)",
    ),
    directive::<RustApp>(
        c"RustAppAuthUser",
        Takes::Words,
        AUTH_CONFIG,
        AUTH_USER,
        c"RustAppAuthUser /path/to/libapp.so [process-group=NAME]: the application whose users AuthBasicProvider rustapp checks here (default: the application serving the URL)",
    ),
    directive::<RustApp>(
        c"RustAppAuthGroup",
        Takes::Words,
        AUTH_CONFIG,
        AUTH_GROUP,
        c"RustAppAuthGroup /path/to/libapp.so [process-group=NAME]: the application whose groups Require rustapp-group asks here (default: RustAppAuthUser's)",
    ),
    directive::<RustApp>(
        c"RustAppStreamIdleTimeout",
        Takes::One,
        SERVER_OR_SECTION,
        STREAM_IDLE_TIMEOUT,
        c"RustAppStreamIdleTimeout SECONDS: how long a response here may wait with nothing to send (server-sent events, long polls) before it is ended; in a daemon group it replaces request-timeout here",
    ),
    directive::<RustApp>(
        c"RustAppSlowRequestLog",
        Takes::One,
        SERVER_OR_SECTION,
        SLOW_REQUEST_LOG,
        c"RustAppSlowRequestLog SECONDS|Off: a request here that takes longer (until its response has gone out) is logged once, with its URL, where it ran (daemon group and process, or embedded) and how long it took (default Off)",
    ),
    directive::<RustApp>(
        c"RustAppBufferRequestBody",
        Takes::One,
        SERVER_OR_SECTION,
        BUFFER_REQUEST_BODY,
        c"RustAppBufferRequestBody On|Off|BYTES: read a request body (whole, or up to BYTES) before a daemon group is asked, so slow uploads hold no daemon thread (default On; Off or a size for applications that must see large uploads as they arrive)",
    ),
    directive::<RustApp>(
        c"RustAppMaxTunnels",
        Takes::One,
        SERVER,
        MAX_TUNNELS,
        c"RustAppMaxTunnels N: how many upgraded connections (WebSockets) one Apache child relays at once, each holding one of its threads; more are answered 503 (default: half of ThreadsPerChild)",
    ),
    directive::<RustApp>(
        c"RustAppTrustedProxies",
        Takes::Words,
        SERVER,
        TRUSTED_PROXIES,
        c"RustAppTrustedProxies ADDRESS|NETWORK ...: the proxies (a TLS-terminating load balancer) whose RustAppTrustedProxyHeaders applications may believe",
    ),
    directive::<RustApp>(
        c"RustAppTrustedProxyHeaders",
        Takes::Words,
        SERVER,
        TRUSTED_PROXY_HEADERS,
        c"RustAppTrustedProxyHeaders HEADER ...: X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host, X-Forwarded-Port, Forwarded: honoured from RustAppTrustedProxies, removed from everyone else",
    ),
    directive::<RustApp>(
        c"RustAppErrorOverride",
        Takes::Flag,
        SERVER_OR_SECTION,
        ERROR_OVERRIDE,
        c"RustAppErrorOverride On|Off: Apache's error handling (ErrorDocument) replaces the body of an application's 4xx and 5xx answers here, as ProxyErrorOverride does (default Off)",
    ),
    directive::<RustApp>(
        c"RustAppSendfileRoot",
        Takes::Words,
        SERVER_OR_SECTION,
        SENDFILE_ROOT,
        c"RustAppSendfileRoot DIR ...: applications here may answer with X-Sendfile naming a file under these directories, which Apache then sends itself (ranges, ETag, conditional requests)",
    ),
    END_OF_TABLE,
]);

/// Where this configuration generation keeps its [`ConfigTables`].
const TABLES: &std::ffi::CStr = c"mod_rustapp.config-tables";

/// This generation's tables, made on first use (never from `.htaccess`, which only reads).
fn tables(cmd: Cmd<'_>) -> MutexGuard<'_, ConfigTables> {
    let pool = cmd.config_pool();
    let tables = match pool.kept::<Mutex<ConfigTables>>(TABLES) {
        Some(tables) => tables,
        None => pool.keep(TABLES, Mutex::default()),
    };
    tables.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The tables the server configuration made, for reading, if any directive made them.
pub(super) fn tables_of(main: crate::ffi::Server<'_>) -> Option<MutexGuard<'_, ConfigTables>> {
    let tables = main.config_pool().kept::<Mutex<ConfigTables>>(TABLES)?;
    Some(tables.lock().unwrap_or_else(PoisonError::into_inner))
}

/// Runs directive `id`'s parser.
pub(super) fn apply(
    id: usize,
    cmd: Cmd<'_>,
    dir: &mut DirConfig,
    args: Args<'_>,
) -> Result<(), String> {
    let words = match &args {
        Args::Words(words) => words.as_slice(),
        Args::Flag(_) => &[],
    };
    let flag = matches!(args, Args::Flag(true));
    let resolve = |path: &str| cmd.server_root_relative(path);
    match id {
        ALIAS => config::rust_app_alias(
            cmd.server_config_mut::<ServerConfig>(),
            &mut tables(cmd),
            words,
            resolve,
            cmd.location(),
        ),
        SETTING => {
            config::rust_app_setting(cmd.server_config_mut::<ServerConfig>(), words[0], words[1])
        }
        PASS_AUTHORIZATION => {
            dir.pass_authorization = Some(flag);
            Ok(())
        }
        DAEMON_PROCESS => config::rust_app_daemon_process(
            cmd.server_config_mut::<ServerConfig>(),
            &mut tables(cmd),
            words,
            cmd.location(),
        ),
        PROCESS_GROUP => {
            let group =
                config::rust_app_process_group(&mut tables(cmd), words[0], &cmd.location())?;
            dir.process_group = Some(group);
            Ok(())
        }
        RESTRICT_EMBEDDED => {
            cmd.server_config_mut::<ServerConfig>().restrict_embedded = Some(flag);
            Ok(())
        }
        FIGURES => {
            cmd.server_config_mut::<ServerConfig>().figures = Some(flag);
            Ok(())
        }
        SOCKET_PREFIX => {
            let dir = cmd.server_root_relative(words[0]);
            if !std::path::Path::new(&dir).is_dir() {
                return Err(format!(
                    "RustAppSocketPrefix: {dir} is not a directory; give the directory the daemon sockets go in"
                ));
            }
            cmd.server_config_mut::<ServerConfig>().socket_prefix = Some(dir);
            Ok(())
        }
        AUTH_USER => {
            dir.auth_user = Some(user_store(cmd, "RustAppAuthUser", words)?.into());
            Ok(())
        }
        STREAM_IDLE_TIMEOUT => {
            dir.stream_idle_timeout = Some(config::rust_app_stream_idle_timeout(words[0])?);
            Ok(())
        }
        SLOW_REQUEST_LOG => {
            dir.slow_request_log = Some(config::rust_app_slow_request_log(words[0])?);
            Ok(())
        }
        SENDFILE_ROOT => {
            dir.sendfile_roots = Some(std::sync::Arc::new(config::rust_app_sendfile_root(words)?));
            Ok(())
        }
        ERROR_OVERRIDE => {
            dir.error_override = Some(flag);
            Ok(())
        }
        TRUSTED_PROXIES => {
            let networks = words
                .iter()
                .map(|w| config::Network::parse(w))
                .collect::<Result<Vec<_>, _>>()?;
            cmd.server_config_mut::<ServerConfig>().trusted_proxies = Some(networks);
            Ok(())
        }
        TRUSTED_PROXY_HEADERS => {
            let headers = words
                .iter()
                .map(|w| config::ProxyHeader::parse(w))
                .collect::<Result<Vec<_>, _>>()?;
            cmd.server_config_mut::<ServerConfig>()
                .trusted_proxy_headers = Some(headers);
            Ok(())
        }
        MAX_TUNNELS => {
            cmd.server_config_mut::<ServerConfig>().max_tunnels =
                Some(config::rust_app_max_tunnels(words[0])?);
            Ok(())
        }
        BUFFER_REQUEST_BODY => {
            dir.buffer_request_body = Some(config::rust_app_buffer_request_body(words[0])?);
            Ok(())
        }
        AUTH_GROUP => {
            dir.auth_group = Some(user_store(cmd, "RustAppAuthGroup", words)?.into());
            Ok(())
        }
        _ => Err(format!("{} is not a directive of mod_rustapp", cmd.name())),
    }
}

/// `RustAppAuthUser` and `RustAppAuthGroup`: from the server configuration, the store is made
/// sure to be started; from `.htaccess` it must be one the server configuration starts.
fn user_store(
    cmd: Cmd<'_>,
    directive: &str,
    words: &[&str],
) -> Result<config::UserStoreRef, String> {
    let resolve = |path: &str| cmd.server_root_relative(path);
    if cmd.in_htaccess() {
        let read = tables_of(cmd.server());
        let none = ConfigTables::default();
        let groups = GroupNames::Defined(read.as_deref().unwrap_or(&none));
        return parse_user_store_ref(directive, words, resolve, cmd.location(), groups);
    }
    let mut tables = tables(cmd);
    let store = parse_user_store_ref(
        directive,
        words,
        resolve,
        cmd.location(),
        GroupNames::Naming(&mut tables),
    )?;
    register_user_store(cmd.server_config_mut::<ServerConfig>(), &mut tables, &store);
    Ok(store)
}
