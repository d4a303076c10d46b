//! A site whose users and groups live in an SQLite database, and whose user store Apache
//! authenticates against: `AuthBasicProvider rustapp` checks passwords here, `Require
//! rustapp-group staff` asks for groups here (see apache-conf/usersite.conf).
//!
//! Setting `USERSITE_DB` names the database, which `usersite-admin` creates and fills:
//!
//! ```text
//! usersite-admin /srv/site/users.db add-user alice     # reads the password from stdin
//! usersite-admin /srv/site/users.db add-group alice staff
//! usersite-admin /srv/site/users.db list
//! ```
//!
//! Pages: every page greets whoever Apache authenticated (`REMOTE_USER`); `.../whoami` also
//! lists their groups. The site reads the database only; in daemon mode it can be readable by the site's
//! user alone, so Apache's own processes never see the password hashes.

use std::path::Path;

use rustapp::{App, Error, Request, Response, Settings, UserStore};
use userdb::Store;

pub struct UserSite {
    store: Store,
}

impl App for UserSite {
    fn start(settings: &Settings) -> Result<Self, Error> {
        let path = settings.require("USERSITE_DB")?;
        let store = Store::open_read_only(Path::new(path))?;
        log::info!("usersite: users from {path}");
        Ok(UserSite { store })
    }

    fn handle(&self, request: &mut Request<'_>) -> Result<Response, Error> {
        let user = request.var("REMOTE_USER").filter(|u| !u.is_empty());
        let whoami = request.path_info().ends_with("/whoami");
        match (whoami, user) {
            (true, Some(user)) => {
                let groups = self.store.groups(user)?;
                Ok(Response::text(format!(
                    "user={user}\ngroups={}\n",
                    groups.join(",")
                )))
            }
            (true, None) => Ok(Response::text("user=\ngroups=\n")),
            (_, Some(user)) => Ok(Response::text(format!("Hello, {user}!\n"))),
            (_, None) => Ok(Response::text(
                "Hello, guest! Members sign in at /members/.\n",
            )),
        }
    }

    fn users(&self) -> Option<&dyn UserStore> {
        Some(&self.store)
    }
}

rustapp::export_app!(UserSite);
