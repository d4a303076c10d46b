//! Runtime state, apart from configuration: what one configuration generation started (every
//! application by index, the daemon groups' sockets), and what each serving process holds (its
//! application instances, by the same index).

use std::sync::OnceLock;

use crate::config::{AliasIndex, AppTable, GroupIndex};
use crate::daemon::{DaemonRuntime, GroupRuntime};
use crate::figures::{AliasFigures, Board};
use crate::host::{AppInstance, AppSlot};

/// What Apache's parent sets up for one configuration generation (kept in its configuration
/// pool), which the processes it forks inherit.
pub(crate) struct Generation {
    pub(crate) apps: std::sync::Arc<AppTable>,
    /// The daemon groups, if the configuration defines any and Apache is serving.
    pub(crate) daemons: Option<std::sync::Arc<DaemonRuntime>>,
    /// The figures shown on mod_status's page and by the metrics handler.
    pub(crate) figures: std::sync::Arc<Board>,
}

/// One Apache child's runtime state.
pub(crate) struct Registry {
    generation: &'static Generation,
    /// By alias index: the instance, if this process runs the application embedded.
    instances: Vec<AppSlot>,
}

/// Set once in each Apache child, in `child_init`, after the fork: a child belongs to one
/// configuration generation for its whole life, and the parent (which outlives generations)
/// never sets it, so every child starts with it empty.
static REGISTRY: OnceLock<Registry> = OnceLock::new();

impl Registry {
    /// This child's registry for `generation`, made on the first call.
    pub(crate) fn install(generation: &'static Generation) -> &'static Registry {
        REGISTRY.get_or_init(|| Registry {
            generation,
            instances: (0..generation.apps.len())
                .map(|_| AppSlot::default())
                .collect(),
        })
    }

    /// This process's registry: `None` outside Apache's children.
    pub(crate) fn current() -> Option<&'static Registry> {
        REGISTRY.get()
    }

    /// Where application `alias` keeps its instance in this process.
    pub(crate) fn slot(&self, alias: AliasIndex) -> Option<&AppSlot> {
        self.instances.get(alias.get())
    }

    /// The running instance of application `alias`, or why there is none.
    pub(crate) fn instance(&self, alias: AliasIndex) -> Result<&AppInstance, &str> {
        self.slot(alias)
            .ok_or("it is not part of this process's configuration")?
            .get()
    }

    /// Daemon group `group`'s side in this process.
    pub(crate) fn group(&self, group: GroupIndex) -> Option<&GroupRuntime> {
        self.generation.daemons.as_ref()?.group(group)
    }

    /// The generation this process serves.
    pub(crate) fn generation(&self) -> &'static Generation {
        self.generation
    }

    /// Application `alias`'s figures, if they are kept.
    pub(crate) fn alias_figures(&self, alias: AliasIndex) -> Option<&AliasFigures> {
        self.generation.figures.alias(alias)
    }

    /// Destroys every instance (the process is exiting).
    pub(crate) fn stop_all(&self) {
        for slot in &self.instances {
            slot.stop();
        }
    }
}
