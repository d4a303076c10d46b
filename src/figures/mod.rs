//! The figures an admin reads (mod_status's page, the metrics handler, `rustapp-express
//! status`): what each daemon group and each application is doing, kept in memory that
//! Apache's parent maps before it forks anything, so that its children, its daemons and
//! itself all write to the same place without a lock on the request path.
//!
//! - `group`: a daemon group's figures: what Apache writes, and a slot per process;
//! - `process`: what a daemon process writes into its own slot;
//! - `alias`: an application's requests, errors and latency, as Apache's children count them;
//! - `reason`: why a daemon process ended;
//! - `snapshot`: the figures read at one moment, with what daemons wrote checked;
//! - `prometheus`, `status_page`: the snapshot as Prometheus text and as mod_status lines.
//!
//! The mappings live in Apache's parent from one configuration generation to the next (the
//! module stays loaded), so the counts survive graceful restarts; a daemon, once forked,
//! keeps only its own group's process slots.

mod alias;
mod group;
mod process;
mod prometheus;
mod reason;
mod snapshot;
mod status_page;

use std::sync::{Arc, Mutex};

pub(crate) use alias::AliasFigures;
pub(crate) use group::GroupFigures;
pub(crate) use process::{ProcessFigures, Running};
pub(crate) use prometheus::{CONTENT_TYPE as PROMETHEUS_CONTENT_TYPE, prometheus_text};
pub(crate) use reason::EndReason;
pub(crate) use snapshot::{GroupShape, Snapshot, resident_bytes};
pub(crate) use status_page::{status_html, status_lines};

use crate::config::{AppTable, DaemonGroup};

/// One configuration generation's figures, by group index and by alias index (`None` where
/// the figures are off, or for an index with nothing behind it).
#[derive(Default)]
pub(crate) struct Board {
    pub(crate) groups: Vec<Option<Arc<GroupFigures>>>,
    pub(crate) aliases: Vec<Option<Arc<AliasFigures>>>,
}

/// Every mapping made so far, reused by the next generation for the same group name and the
/// same application at the same mount point.
#[derive(Default)]
struct Kept {
    groups: Vec<Arc<GroupFigures>>,
    aliases: Vec<Arc<AliasFigures>>,
    /// Figures no longer configured that may still be mapped here (an earlier generation's
    /// daemons are still watched), to be given up by a daemon as well.
    earlier: Vec<std::sync::Weak<GroupFigures>>,
}

static KEPT: Mutex<Kept> = Mutex::new(Kept {
    groups: Vec::new(),
    aliases: Vec::new(),
    earlier: Vec::new(),
});

impl Board {
    /// In Apache's parent, before it forks: the figures of `groups` (by their index, of
    /// `group_count`) and of every application of `apps`, reusing the previous generation's.
    pub(crate) fn for_generation(
        groups: &[Arc<DaemonGroup>],
        group_count: usize,
        apps: &AppTable,
    ) -> Result<Board, String> {
        let mut kept = KEPT
            .lock()
            .map_err(|_| "the figures registry is poisoned".to_owned())?;
        let cannot = |what: &str, e: std::io::Error| {
            format!("cannot map shared memory for the figures of {what}: {e}")
        };
        let mut board = Board {
            groups: (0..group_count).map(|_| None).collect(),
            aliases: (0..apps.len()).map(|_| None).collect(),
        };
        let mut groups_now = Vec::new();
        for group in groups {
            let existing = kept
                .groups
                .iter()
                .find(|g| g.name == group.name && g.fits(group.processes, group.threads))
                .cloned();
            let figures = match existing {
                Some(figures) => figures,
                None => Arc::new(
                    GroupFigures::new(&group.name, group.processes, group.threads)
                        .map_err(|e| cannot(&format!("daemon group '{}'", group.name), e))?,
                ),
            };
            if let Some(slot) = board.groups.get_mut(group.index.get()) {
                *slot = Some(figures.clone());
            }
            groups_now.push(figures);
        }
        let mut aliases_now = Vec::new();
        for (index, entry) in apps.by_index().enumerate() {
            let Some(entry) = entry.filter(|e| !e.alias.authentication_only) else {
                continue;
            };
            let key = (
                entry.alias.mount.script_name(),
                entry.alias.library.as_str(),
            );
            let figures = match kept.aliases.iter().find(|a| a.key() == key).cloned() {
                Some(figures) => figures,
                None => Arc::new(
                    AliasFigures::new(key.0, key.1)
                        .map_err(|e| cannot(&entry.alias.to_string(), e))?,
                ),
            };
            board.aliases[index] = Some(figures.clone());
            aliases_now.push(figures);
        }
        // Figures of groups and applications no longer configured go (their counts with them).
        let before = std::mem::replace(&mut kept.groups, groups_now);
        let gone: Vec<_> = before
            .iter()
            .filter(|g| !kept.groups.iter().any(|now| Arc::ptr_eq(now, g)))
            .map(Arc::downgrade)
            .collect();
        kept.earlier.retain(|g| g.strong_count() > 0);
        kept.earlier.extend(gone);
        kept.aliases = aliases_now;
        Ok(board)
    }

    /// Whether no figures are kept (`RustAppFigures Off`, or not serving).
    pub(crate) fn is_off(&self) -> bool {
        self.groups.iter().all(Option::is_none) && self.aliases.iter().all(Option::is_none)
    }

    pub(crate) fn group(&self, index: crate::config::GroupIndex) -> Option<&Arc<GroupFigures>> {
        self.groups.get(index.get())?.as_ref()
    }

    pub(crate) fn alias(&self, index: crate::config::AliasIndex) -> Option<&AliasFigures> {
        self.aliases.get(index.get())?.as_deref()
    }
}

/// In a daemon just forked (no other thread yet): every shared mapping but its own group's
/// process slots leaves this process — the figures of Apache and of other groups, and what
/// Apache itself shares (its scoreboard) — so that its application cannot change them.
pub(crate) fn keep_only_process_slots_of(own: Option<&GroupFigures>) {
    if let Ok(kept) = KEPT.lock() {
        let earlier = kept.earlier.iter().filter_map(std::sync::Weak::upgrade);
        for group in kept.groups.iter().cloned().chain(earlier) {
            let (apache, processes) = group.shared_words();
            apache.give_up();
            if !own.is_some_and(|own| std::ptr::eq(own, &*group)) {
                processes.give_up();
            }
        }
        for alias in &kept.aliases {
            alias.shared_words().give_up();
        }
    }
    let own = own.map(|own| own.shared_words().1);
    if let Err(e) = crate::ffi::unmap_shared_memory_but(own) {
        log::error!(
            "daemon process {}: cannot read its memory map to drop Apache's shared memory: {e}",
            std::process::id()
        );
    }
}
