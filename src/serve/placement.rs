//! Where an application runs for a request: inside this Apache child, or in a daemon group.
//! One decision for serving and for authentication.

use crate::config::{Alias, DirConfig, GroupIndex, ServerConfig};
use crate::ffi::Request;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Placement {
    Embedded,
    Group(GroupIndex),
}

/// `RustAppRestrictEmbedded On` forbids running the application inside Apache here.
#[derive(Clone, Copy)]
pub(crate) struct EmbeddingForbidden;

/// Where `app` runs for `request`: the group chosen for this use (a user store's
/// `process-group=`) wins, then the alias line's `process-group=`, then the location's
/// `RustAppProcessGroup`; without any, embedded, if the server allows it.
pub(crate) fn placement(
    request: Request<'_>,
    app: &Alias,
    chosen: Option<GroupIndex>,
) -> Result<Placement, EmbeddingForbidden> {
    let dir_group = || {
        request
            .module_dir_config::<DirConfig>()
            .and_then(|dir| dir.process_group)
    };
    match chosen.or(app.process_group).or_else(dir_group) {
        Some(group) => Ok(Placement::Group(group)),
        None if embedding_forbidden(request) => Err(EmbeddingForbidden),
        None => Ok(Placement::Embedded),
    }
}

fn embedding_forbidden(request: Request<'_>) -> bool {
    request
        .server()
        .module_config::<ServerConfig>()
        .is_some_and(ServerConfig::embedding_forbidden)
}
