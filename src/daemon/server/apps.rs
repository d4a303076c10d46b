//! The applications a daemon serves, by the index Apache children name in `RequestHead::app`
//! (the alias index of the configuration), each started at most once, when first needed.

use std::path::PathBuf;
use std::sync::OnceLock;

use crate::host::AppInstance;

/// Every application of the configuration, as this daemon starts them.
pub(crate) struct DaemonApps {
    apps: Vec<Option<LazyApp>>,
}

type StartFn = Box<dyn Fn() -> Result<AppInstance, String> + Send + Sync>;

/// An application a daemon starts at most once, when first needed (or at once if preloaded).
pub(crate) struct LazyApp {
    start: StartFn,
    instance: OnceLock<Result<AppInstance, String>>,
    /// The library file, and which file it was when the application started.
    library: Option<PathBuf>,
    loaded: OnceLock<Option<FileIdentity>>,
}

/// Enough to tell that a file at a path was replaced (a new file renamed over it, or rewritten).
#[derive(Clone, Copy, PartialEq, Eq)]
struct FileIdentity {
    device: u64,
    inode: u64,
    modified_ns: i64,
}

fn identity(path: &std::path::Path) -> Option<FileIdentity> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    Some(FileIdentity {
        device: meta.dev(),
        inode: meta.ino(),
        modified_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
    })
}

impl LazyApp {
    pub(crate) fn new(start: StartFn, library: Option<PathBuf>, preload: bool) -> LazyApp {
        let app = LazyApp {
            start,
            instance: OnceLock::new(),
            library,
            loaded: OnceLock::new(),
        };
        if preload {
            let _ = app.get();
        }
        app
    }

    fn get(&self) -> Result<&AppInstance, &str> {
        match self.instance.get_or_init(|| {
            let _ = self.loaded.set(self.library.as_deref().and_then(identity));
            let started = (self.start)();
            if let Err(reason) = &started {
                log::error!("daemon: an application cannot serve: {reason}");
            }
            started
        }) {
            Ok(app) => Ok(app),
            Err(reason) => Err(reason),
        }
    }
}

impl DaemonApps {
    /// `apps` by index; `None` where the index names no application.
    pub(crate) fn new(apps: Vec<Option<LazyApp>>) -> DaemonApps {
        DaemonApps { apps }
    }

    /// A library of a started application whose file is no longer the one loaded.
    pub(super) fn replaced_library(&self) -> Option<&PathBuf> {
        self.apps.iter().flatten().find_map(|app| {
            let (path, Some(Some(loaded))) = (app.library.as_ref()?, app.loaded.get()) else {
                return None;
            };
            (identity(path).as_ref() != Some(loaded)).then_some(path)
        })
    }

    /// Runs the clean-up of every application that started (the ABI's `destroy`: an
    /// application's `Drop`), once no request runs in any of them.
    pub(crate) fn stop_all(&self) {
        for app in self.apps.iter().flatten() {
            if let Some(Ok(instance)) = app.instance.get() {
                instance.stop();
            }
        }
    }

    pub(super) fn get(&self, index: u32) -> Result<&AppInstance, String> {
        match self.apps.get(index as usize).and_then(Option::as_ref) {
            Some(app) => app
                .get()
                .map_err(|reason| format!("the application cannot serve: {reason}")),
            None => Err(format!("this daemon has no application #{index}")),
        }
    }
}
