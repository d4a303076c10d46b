//! The examples' user database: users and groups in SQLite, with salted Argon2id password
//! hashes (PHC strings, so the parameters travel with each hash). examples/usersite serves it
//! and manages it (`usersite-admin`); examples/axum-site authenticates against it too.
//!
//! A [`Store`] is a `rustapp::UserStore`, so any application holding one can offer it to
//! Apache's authentication.

use std::path::Path;
use std::sync::Mutex;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand_core::OsRng;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use rustapp::{PasswordCheck, Request, UserStore};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS users (
        id INTEGER PRIMARY KEY,
        -- Logins are case-insensitive; the name as stored is the canonical one.
        name TEXT NOT NULL UNIQUE COLLATE NOCASE,
        password_hash TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS memberships (
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        group_name TEXT NOT NULL,
        PRIMARY KEY (user_id, group_name)
    );
";

/// What a password check found.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    UnknownUser,
    WrongPassword,
    /// Right password; the user's name as stored.
    Granted(String),
}

pub struct Store {
    db: Mutex<Connection>,
    /// A hash of a random password, verified when the user does not exist, so that an unknown
    /// user takes as long as a wrong password.
    decoy_hash: String,
}

impl Store {
    /// Opens an existing database for reading: what the web application does.
    pub fn open_read_only(path: &Path) -> Result<Store, Error> {
        let db = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| format!("cannot open the user database {}: {e}", path.display()))?;
        Store::with(db)
    }

    /// Opens (creating if needed) a database for changes: what `usersite-admin` does.
    pub fn open_for_changes(path: &Path) -> Result<Store, Error> {
        let db = Connection::open(path)
            .map_err(|e| format!("cannot open the user database {}: {e}", path.display()))?;
        db.execute_batch(SCHEMA)?;
        db.execute_batch("PRAGMA foreign_keys = ON")?;
        Store::with(db)
    }

    fn with(db: Connection) -> Result<Store, Error> {
        let random = SaltString::generate(&mut OsRng);
        Ok(Store {
            db: Mutex::new(db),
            decoy_hash: hash_password(random.as_str())?,
        })
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves the connection usable.
        self.db
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Checks `password` for `user`. Every outcome costs one hash verification.
    pub fn check_password(&self, user: &str, password: &str) -> Result<Verdict, Error> {
        let found: Option<(String, String)> = self
            .db()
            .query_row(
                "SELECT name, password_hash FROM users WHERE name = ?1",
                [user],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        // The lock is released: verifying is the slow part and needs no database.
        let (name, stored) = match &found {
            Some((name, hash)) => (Some(name), hash.as_str()),
            None => (None, self.decoy_hash.as_str()),
        };
        let matches = verify_password(stored, password)?;
        Ok(match (name, matches) {
            (None, _) => Verdict::UnknownUser,
            (Some(_), false) => Verdict::WrongPassword,
            (Some(name), true) => Verdict::Granted(name.clone()),
        })
    }

    /// The groups of `user`, by name (empty for an unknown user).
    pub fn groups(&self, user: &str) -> Result<Vec<String>, Error> {
        let db = self.db();
        let mut query = db.prepare_cached(
            "SELECT m.group_name FROM memberships m JOIN users u ON u.id = m.user_id
             WHERE u.name = ?1 ORDER BY m.group_name",
        )?;
        let groups = query
            .query_map([user], |row| row.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(groups)
    }

    /// Adds a user, or sets the password of an existing one.
    pub fn set_password(&self, user: &str, password: &str) -> Result<(), Error> {
        check_name("user", user)?;
        let hash = hash_password(password)?;
        self.db().execute(
            "INSERT INTO users (name, password_hash) VALUES (?1, ?2)
             ON CONFLICT(name) DO UPDATE SET password_hash = excluded.password_hash",
            params![user, hash],
        )?;
        Ok(())
    }

    pub fn add_to_group(&self, user: &str, group: &str) -> Result<(), Error> {
        check_name("group", group)?;
        let added = self.db().execute(
            "INSERT OR IGNORE INTO memberships (user_id, group_name)
             SELECT id, ?2 FROM users WHERE name = ?1",
            params![user, group],
        )?;
        if added == 0 && self.groups(user)?.iter().all(|g| g != group) {
            return Err(format!("there is no user '{user}'; add it first").into());
        }
        Ok(())
    }

    pub fn remove_from_group(&self, user: &str, group: &str) -> Result<(), Error> {
        self.db().execute(
            "DELETE FROM memberships WHERE group_name = ?2
             AND user_id = (SELECT id FROM users WHERE name = ?1)",
            params![user, group],
        )?;
        Ok(())
    }

    pub fn remove_user(&self, user: &str) -> Result<bool, Error> {
        Ok(self
            .db()
            .execute("DELETE FROM users WHERE name = ?1", [user])?
            > 0)
    }

    /// Every user with their groups, for `usersite-admin list`.
    pub fn users(&self) -> Result<Vec<(String, Vec<String>)>, Error> {
        let names: Vec<String> = {
            let db = self.db();
            let mut query = db.prepare("SELECT name FROM users ORDER BY name")?;
            query
                .query_map([], |row| row.get(0))?
                .collect::<Result<_, _>>()?
        };
        names
            .into_iter()
            .map(|name| {
                let groups = self.groups(&name)?;
                Ok((name, groups))
            })
            .collect()
    }
}

impl UserStore for Store {
    fn check_password(
        &self,
        _request: &Request<'_>,
        user: &str,
        password: &str,
    ) -> Result<PasswordCheck, Error> {
        Ok(match Store::check_password(self, user, password)? {
            Verdict::UnknownUser => PasswordCheck::UnknownUser,
            Verdict::WrongPassword => PasswordCheck::Denied,
            Verdict::Granted(name) if name == user => PasswordCheck::Granted,
            Verdict::Granted(name) => PasswordCheck::GrantedAs(name),
        })
    }

    fn groups_for_user(&self, _request: &Request<'_>, user: &str) -> Result<Vec<String>, Error> {
        self.groups(user)
    }
}

/// A salted Argon2id hash with the crate's recommended parameters.
fn hash_password(password: &str) -> Result<String, Error> {
    let salt = SaltString::generate(&mut OsRng);
    let hash = Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| format!("cannot hash the password: {e}"))?;
    Ok(hash.to_string())
}

fn verify_password(stored: &str, password: &str) -> Result<bool, Error> {
    let parsed =
        PasswordHash::new(stored).map_err(|e| format!("a stored password hash is invalid: {e}"))?;
    Ok(Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok())
}

/// User and group names end up in `REMOTE_USER` and logs: printable, no spaces.
fn check_name(what: &str, name: &str) -> Result<(), Error> {
    let fine = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || "._@-".contains(c));
    if fine {
        Ok(())
    } else {
        Err(
            format!("the {what} name '{name}' must be 1-64 letters, digits, '.', '_', '@' or '-'")
                .into(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (Store, std::path::PathBuf) {
        let path = std::env::temp_dir().join(format!(
            "userdb-test-{}-{:?}.db",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_file(&path);
        (Store::open_for_changes(&path).unwrap(), path)
    }

    #[test]
    fn passwords_are_checked_against_salted_hashes() {
        let (store, path) = store();
        store.set_password("Alice", "wonderland").unwrap();
        store.set_password("bob", "wonderland").unwrap();
        let hashes: Vec<String> = {
            let db = store.db();
            let mut q = db.prepare("SELECT password_hash FROM users").unwrap();
            q.query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        assert!(hashes[0].starts_with("$argon2id$"), "{}", hashes[0]);
        assert_ne!(hashes[0], hashes[1], "same password, different salts");

        let read_only = Store::open_read_only(&path).unwrap();
        assert_eq!(
            read_only.check_password("alice", "wonderland").unwrap(),
            Verdict::Granted("Alice".into())
        );
        assert_eq!(
            read_only.check_password("alice", "nope").unwrap(),
            Verdict::WrongPassword
        );
        assert_eq!(
            read_only.check_password("carol", "wonderland").unwrap(),
            Verdict::UnknownUser
        );
        assert!(read_only.set_password("carol", "x").is_err(), "read-only");
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn groups_belong_to_users() {
        let (store, path) = store();
        store.set_password("alice", "x").unwrap();
        store.add_to_group("alice", "staff").unwrap();
        store.add_to_group("ALICE", "users").unwrap();
        store.add_to_group("alice", "staff").unwrap();
        assert_eq!(store.groups("alice").unwrap(), ["staff", "users"]);
        assert!(store.add_to_group("nobody", "staff").is_err());
        store.remove_from_group("alice", "staff").unwrap();
        assert_eq!(store.groups("alice").unwrap(), ["users"]);
        assert!(store.remove_user("alice").unwrap());
        assert!(store.groups("alice").unwrap().is_empty());
        assert!(store.set_password("has space", "x").is_err());
        std::fs::remove_file(path).unwrap();
    }
}
