//! Process life: the configuration is checked, a generation's daemons start in Apache's
//! parent, and applications start in each serving process after Apache forks it (never in the
//! parent) and are destroyed when that process exits.

use std::sync::Arc;

use super::directives::tables_of;
use crate::config::{Alias, AppTable, ServerConfig, daemon_groups};
use crate::ffi::{Pool, Server, is_serving_start, raise_module_log_level, server_log_scope};
use crate::figures::Board;
use crate::host::{AppContext, AppInstance, HOST_V1, load_library};
use crate::serve::{Generation, Registry};

/// Where a configuration generation keeps its [`Generation`].
const GENERATION: &std::ffi::CStr = c"mod_rustapp.generation";

/// `check_config` (also run by `apache2 -t`): what spans directives and virtual hosts.
pub(super) fn check_config(main: Server<'_>) -> Result<(), String> {
    tables_of(main).map_or(Ok(()), |tables| tables.check_groups_defined())
}

/// `post_config`: every application gets its index, and daemon groups start (in Apache's
/// parent, once per configuration generation).
pub(super) fn post_config(pconf: Pool<'static>, main: Server<'static>) -> Result<(), String> {
    let _scope = server_log_scope(main);
    let (alias_count, group_count) = tables_of(main)
        .map(|t| (t.alias_count(), t.group_count()))
        .unwrap_or_default();
    let apps = Arc::new(AppTable::collect(main, alias_count));
    let figures = Arc::new(figures_for(main, &apps, group_count)?);
    let daemons = crate::daemon::start(pconf, main, apps.clone(), group_count, &figures)?;
    pconf.keep(
        GENERATION,
        Generation {
            apps,
            daemons,
            figures,
        },
    );
    Ok(())
}

/// The generation's figures: mapped only when Apache is really about to serve (not for
/// `apache2 -t`, nor the first of the two configuration passes at start), unless
/// `RustAppFigures Off`.
fn figures_for(
    main: Server<'static>,
    apps: &AppTable,
    group_count: usize,
) -> Result<Board, String> {
    let on = main
        .module_config::<ServerConfig>()
        .is_some_and(ServerConfig::keeps_figures);
    if !on || !is_serving_start() {
        return Ok(Board::default());
    }
    Board::for_generation(&daemon_groups(main), group_count, apps)
}

/// `child_init`: this child's registry, and every embedded application started in it.
pub(super) fn child_init(child_pool: Pool<'static>, main: Server<'static>) {
    let Some(generation) = main.config_pool().kept::<Generation>(GENERATION) else {
        return;
    };
    let registry = Registry::install(generation);
    if let Some(daemons) = &generation.daemons {
        daemons.close_listeners();
    }
    for server in main.and_following() {
        raise_module_log_level(server.log_level());
        let Some(config) = server.module_config::<ServerConfig>() else {
            continue;
        };
        // The main server comes first, so an alias it shares with virtual hosts is started
        // once, with the main server's settings.
        if config.embedding_forbidden() {
            continue;
        }
        let stores = config
            .user_stores
            .iter()
            .filter(|store| config.asks_user_store(store));
        // An alias mounted into a daemon group never runs here.
        for alias in config.aliases.iter().chain(stores) {
            if alias.process_group.is_none() {
                if let Some(slot) = registry.slot(alias.index) {
                    slot.start_once(|| start(alias, server, config));
                }
            }
        }
    }
    child_pool.on_cleanup(move || registry.stop_all());
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
