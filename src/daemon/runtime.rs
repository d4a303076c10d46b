//! What the Apache parent sets up for daemon mode at each configuration generation, and what
//! its children and daemons inherit: each group's socket and secret, and the applications by
//! the index the protocol names.

use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rustapp_daemon_protocol::TOKEN_LEN;

use super::connection::Connection;
use crate::config::{AppTable, DaemonGroup, GroupIndex};
use crate::figures::GroupFigures;

/// New connections tried for one request whose head could not be written.
const NEW_CONNECTION_ATTEMPTS: usize = 8;

pub(crate) struct DaemonRuntime {
    /// By group index.
    pub(crate) groups: Vec<Option<GroupRuntime>>,
    /// Every application, by the index `RequestHead::app` names.
    pub(crate) apps: Arc<AppTable>,
}

pub(crate) struct GroupRuntime {
    pub(crate) config: Arc<DaemonGroup>,
    pub(crate) socket: PathBuf,
    pub(crate) token: [u8; TOKEN_LEN],
    /// Held by the parent for its daemons (which inherit it); closed in Apache's children.
    listener: Mutex<Option<UnixListener>>,
    /// This Apache child's connections to the group, idle between requests.
    idle: Mutex<Vec<Connection>>,
    /// The group's figures (`None` when they are off).
    pub(crate) figures: Option<Arc<GroupFigures>>,
}

impl DaemonRuntime {
    pub(crate) fn group(&self, index: GroupIndex) -> Option<&GroupRuntime> {
        self.groups.get(index.get())?.as_ref()
    }

    /// Every group, with its index.
    pub(crate) fn each_group(&self) -> impl Iterator<Item = (GroupIndex, &GroupRuntime)> {
        self.groups
            .iter()
            .flatten()
            .map(|group| (group.config.index, group))
    }

    /// In an Apache child: the daemons' listening sockets are not its business.
    pub(crate) fn close_listeners(&self) {
        for (_, group) in self.each_group() {
            group.take_listener();
        }
    }
}

impl GroupRuntime {
    pub(crate) fn new(
        config: Arc<DaemonGroup>,
        socket: PathBuf,
        token: [u8; TOKEN_LEN],
        listener: UnixListener,
        figures: Option<Arc<GroupFigures>>,
    ) -> GroupRuntime {
        GroupRuntime {
            config,
            socket,
            token,
            listener: Mutex::new(Some(listener)),
            idle: Mutex::new(Vec::new()),
            figures,
        }
    }

    pub(crate) fn take_listener(&self) -> Option<UnixListener> {
        self.listener.lock().ok()?.take()
    }

    /// A duplicate of the listening socket, for a daemon about to be forked.
    pub(crate) fn listener_for_daemon(&self) -> std::io::Result<UnixListener> {
        match &*self
            .listener
            .lock()
            .map_err(|_| std::io::Error::other("listener lock poisoned"))?
        {
            Some(listener) => listener.try_clone(),
            None => Err(std::io::Error::other("the group's socket is closed")),
        }
    }

    /// Sends a request head on an idle connection or a new one. A write that fails means the
    /// daemon did not read the head (it closed the connection: it died, or retired and said
    /// goodbye), so the next connection is tried, a bounded number of times for new ones.
    pub(crate) fn send_request(
        &self,
        head: &[u8],
        new_connection: impl Fn() -> std::io::Result<Connection>,
    ) -> std::io::Result<Connection> {
        loop {
            let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
            let Some(mut conn) = idle else { break };
            if conn.send_encoded(head).is_ok() {
                return Ok(conn);
            }
        }
        let mut attempts = 0;
        loop {
            let mut conn = new_connection()?;
            match conn.send_encoded(head) {
                Ok(()) => return Ok(conn),
                Err(e) if attempts >= NEW_CONNECTION_ATTEMPTS => return Err(e),
                Err(_) => attempts += 1,
            }
        }
    }

    /// Keeps a connection whose last response ended cleanly, for the next request.
    pub(crate) fn give_back(&self, conn: Connection) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(conn);
        }
    }
}
