//! Process life: applications start in each serving process after Apache forks it (never in
//! the parent) and are destroyed when that process exits.

use crate::app::{AppContext, AppInstance, HOST_V1, load_library};
use crate::config::{Alias, ServerConfig};
use crate::ffi::{Pool, Server, raise_module_log_level, server_log_scope};

/// `post_config`: daemon groups start (in Apache's parent, once per configuration generation).
pub(crate) fn post_config(
    pconf: Pool<'static>,
    main_server: Server<'static>,
) -> Result<(), String> {
    let _scope = server_log_scope(main_server);
    crate::daemon::start(pconf, main_server)
}

/// `check_config` (also run by `apache2 -t`): settings that span virtual hosts.
pub(crate) fn check_config(main_server: Server<'_>) -> Result<(), String> {
    let configs: Vec<&ServerConfig> = main_server
        .and_following()
        .filter_map(|s| s.module_config::<ServerConfig>())
        .collect();
    ServerConfig::check_daemon_groups(configs.iter().copied())
}

/// `child_init`: load every alias's library and create its instance in this process.
pub(crate) fn child_init(child_pool: Pool<'static>, main_server: Server<'static>) {
    if let Some(daemons) = main_server
        .module_config::<ServerConfig>()
        .and_then(|c| c.daemons.get())
    {
        daemons.close_listeners();
    }
    for server in main_server.and_following() {
        raise_module_log_level(server.log_level());
        let Some(config) = server.module_config::<ServerConfig>() else {
            continue;
        };
        // The main server comes first, so an alias it shares with virtual hosts is started
        // once, with the main server's settings.
        let embedded_allowed = config.restrict_embedded != Some(true);
        for alias in &config.aliases {
            // An alias mounted into a daemon group never runs here.
            if embedded_allowed && alias.process_group.is_none() {
                alias.app.start_once(|| start(alias, server, config));
            }
        }
        for store in &config.user_stores {
            if embedded_allowed && store.process_group.is_none() && config.asks_user_store(store) {
                store.app.start_once(|| start(store, server, config));
            }
        }
    }
    child_pool.on_cleanup(move || {
        for server in main_server.and_following() {
            if let Some(config) = server.module_config::<ServerConfig>() {
                for alias in config.aliases.iter().chain(&config.user_stores) {
                    alias.app.stop();
                }
            }
        }
    });
}

fn start(
    alias: &Alias,
    server: Server<'static>,
    config: &ServerConfig,
) -> Result<AppInstance, String> {
    let _scope = server_log_scope(server);
    let outcome = load_library(&alias.library)
        .map_err(|e| e.to_string())
        .and_then(|table| {
            let settings = config.settings.overridden_by(&alias.settings);
            AppInstance::create(
                table,
                &HOST_V1,
                Box::new(AppContext { server }),
                alias.mount.script_name(),
                &alias.library,
                &settings,
            )
        });
    match &outcome {
        Ok(_) => log::info!("{alias} started in process {}", std::process::id()),
        Err(reason) if alias.authentication_only => {
            log::error!("{alias} cannot serve: {reason}; the checks it answers will answer 500")
        }
        Err(reason) => log::error!(
            "{alias} (RustAppAlias at {}) cannot serve: {reason}; its URLs will answer 500",
            alias.defined_at
        ),
    }
    outcome
}
