//! A fixed user store that exercises every answer the ABI allows, for the authentication
//! tests: users `alice` (groups staff, users) and `bob` (users, login case-insensitive);
//! `whoami` is granted as `uid-N`, the uid of the process that checked; `panic` and `error`
//! fail the check; `nogroups` passes the password check but fails the group lookup.

use md5::{Digest, Md5};
use rustapp::{Error, PasswordCheck, Request, UserStore};

pub(crate) struct TestUsers;

const USERS: [(&str, &str); 3] = [
    ("alice", "wonderland"),
    ("bob", "builder"),
    ("nogroups", "x"),
];

/// The uid of this process: an Apache child's, or a daemon's.
fn process_uid() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or("?")
        .to_owned()
}

fn canonical(user: &str) -> Option<(&'static str, &'static str)> {
    USERS
        .iter()
        .copied()
        .find(|(name, _)| name.eq_ignore_ascii_case(user))
}

impl UserStore for TestUsers {
    fn check_password(
        &self,
        request: &Request<'_>,
        user: &str,
        password: &str,
    ) -> Result<PasswordCheck, Error> {
        if request.header("Authorization").is_some() {
            return Err("the Authorization header reached the user store".into());
        }
        log::info!(
            "checking {user} from {}",
            request.var("REMOTE_ADDR").unwrap_or("?")
        );
        match user {
            "panic" => panic!("the test asked the user store to panic"),
            "error" => return Err("the test asked the user store to fail".into()),
            "whoami" => return Ok(PasswordCheck::GrantedAs(format!("uid-{}", process_uid()))),
            _ => {}
        }
        Ok(match canonical(user) {
            None => PasswordCheck::UnknownUser,
            Some((_, right)) if right != password => PasswordCheck::Denied,
            Some((name, _)) if name == user => PasswordCheck::Granted,
            Some((name, _)) => PasswordCheck::GrantedAs(name.to_owned()),
        })
    }

    fn groups_for_user(&self, _request: &Request<'_>, user: &str) -> Result<Vec<String>, Error> {
        let groups: &[&str] = match user {
            "alice" => &["staff", "users"],
            "bob" => &["users"],
            "nogroups" => return Err("the test asked the group lookup to fail".into()),
            _ => &[],
        };
        Ok(groups.iter().map(|g| (*g).to_owned()).collect())
    }

    fn realm_hash(
        &self,
        _request: &Request<'_>,
        user: &str,
        realm: &str,
    ) -> Result<Option<String>, Error> {
        Ok(canonical(user).map(|(name, password)| {
            let digest = Md5::digest(format!("{name}:{realm}:{password}"));
            digest.iter().map(|b| format!("{b:02x}")).collect()
        }))
    }
}
