//! Creates and changes usersite's user database.
//!
//! ```text
//! usersite-admin DB add-user NAME          password from stdin (first line); also changes it
//! usersite-admin DB add-group NAME GROUP
//! usersite-admin DB remove-group NAME GROUP
//! usersite-admin DB remove-user NAME
//! usersite-admin DB list
//! ```

use std::io::BufRead;
use std::path::Path;
use std::process::ExitCode;

use userdb::{Error, Store};

const USAGE: &str = "usage: usersite-admin DB (add-user NAME | add-group NAME GROUP | remove-group NAME GROUP | remove-user NAME | list)
add-user reads the password from the first line of standard input.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("usersite-admin: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<(), Error> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let [db, command @ ..] = args.as_slice() else {
        return Err(USAGE.into());
    };
    let store = Store::open_for_changes(Path::new(db))?;
    match command {
        ["add-user", name] => {
            let mut password = String::new();
            std::io::stdin().lock().read_line(&mut password)?;
            let password = password.trim_end_matches(['\r', '\n']);
            if password.is_empty() {
                return Err("give the password on standard input".into());
            }
            store.set_password(name, password)
        }
        ["add-group", name, group] => store.add_to_group(name, group),
        ["remove-group", name, group] => store.remove_from_group(name, group),
        ["remove-user", name] => match store.remove_user(name)? {
            true => Ok(()),
            false => Err(format!("there is no user '{name}'").into()),
        },
        ["list"] => {
            for (name, groups) in store.users()? {
                println!("{name}\t{}", groups.join(","));
            }
            Ok(())
        }
        _ => Err(USAGE.into()),
    }
}
