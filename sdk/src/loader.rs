//! Opening an application library and checking its entry table: what the host does before it
//! creates an instance, and what `rustapp-express` does to refuse a bad library before it
//! starts Apache. Behind the `loader` feature; applications do not need it.

use std::fmt;

use crate::abi::{self, AppV1, EntryFn};
use libloading::os::unix::{Library, RTLD_NOW};

/// Why a library cannot serve; shown in the error log with the library's path.
#[derive(Debug)]
pub enum LoadError {
    NotLoadable(String),
    NoEntryPoint,
    NullTable,
    OtherAbi { major: u32, minor: u32 },
    Truncated(u32),
    Incomplete(&'static str),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::NotLoadable(reason) => write!(f, "it is not a loadable library: {reason}"),
            LoadError::NoEntryPoint => write!(
                f,
                "it does not export the `{}` entry point; build it with the rustapp SDK's export_app! macro (or rustapp.h for C)",
                abi::ENTRY_SYMBOL
            ),
            LoadError::NullTable => write!(
                f,
                "its `{}` entry point returned no table",
                abi::ENTRY_SYMBOL
            ),
            LoadError::OtherAbi { major, minor } => write!(
                f,
                "it was built for application ABI {major}.{minor}, but this mod_rustapp speaks ABI {}.{}; rebuild the application against a rustapp SDK with ABI major version {}",
                abi::ABI_MAJOR,
                abi::ABI_MINOR,
                abi::ABI_MAJOR
            ),
            LoadError::Truncated(size) => write!(
                f,
                "its entry table is {size} bytes, shorter than the {} bytes of ABI {}.0",
                abi::APP_V1_0_SIZE,
                abi::ABI_MAJOR
            ),
            LoadError::Incomplete(what) => write!(f, "its entry table has no `{what}` function"),
        }
    }
}

impl std::error::Error for LoadError {}

/// Opens `path` and returns its entry table, which stays valid for the life of the process.
pub fn load_library(path: &str) -> Result<&'static AppV1, LoadError> {
    // RTLD_NODELETE: the library's thread-local destructors must never outlive its code, so a
    // library stays mapped until the process exits.
    // SAFETY: running the library's initialisers is what loading an application means.
    let library = unsafe { Library::open(Some(path), RTLD_NOW | libc::RTLD_NODELETE) }
        .map_err(|e| LoadError::NotLoadable(e.to_string()))?;
    let symbol = abi::ENTRY_SYMBOL.as_bytes();
    // SAFETY: the ABI defines the entry point's type.
    let entry: EntryFn = unsafe { library.get::<EntryFn>(symbol) }
        .map(|s| *s)
        .map_err(|_| LoadError::NoEntryPoint)?;
    // Never unloaded (see above), so the table and functions are 'static.
    std::mem::forget(library);
    // SAFETY: the entry point returns a pointer to a static table, or null.
    let table = unsafe { entry().as_ref() }.ok_or(LoadError::NullTable)?;
    check_table(table)?;
    Ok(table)
}

fn check_table(table: &AppV1) -> Result<(), LoadError> {
    if table.abi_major != abi::ABI_MAJOR {
        return Err(LoadError::OtherAbi {
            major: table.abi_major,
            minor: table.abi_minor,
        });
    }
    // An application built for an older minor version has a shorter table; the host reads
    // only the fields its `size` covers.
    if (table.size as usize) < abi::APP_V1_0_SIZE {
        return Err(LoadError::Truncated(table.size));
    }
    let required = [
        ("create", table.create.is_some()),
        ("handle", table.handle.is_some()),
        ("body_next", table.body_next.is_some()),
        ("body_close", table.body_close.is_some()),
        ("destroy", table.destroy.is_some()),
    ];
    match required.iter().find(|(_, present)| !present) {
        Some((name, _)) => Err(LoadError::Incomplete(name)),
        None => Ok(()),
    }
}
