//! Where a command's output goes and on whose behalf it runs.
//!
//! A command runs either in this process or in a `coldkeep serve` process that holds the
//! repository open (see `serve`); either way it writes to a [`Session`], so the output, the JSON
//! switch and the caller's rights are the same in both places.

use std::io::Write;

use anyhow::{bail, Result};
use coldkeep::model::Principal;
use serde::Serialize;

/// One command's output and caller.
pub struct Session<'a> {
    /// One JSON document instead of text.
    pub json: bool,
    /// Progress bars may be drawn on this process's stderr (a terminal, and the command runs here).
    pub interactive: bool,
    pub out: &'a mut dyn Write,
    pub principal: Principal,
}

impl Session<'_> {
    /// Writes `value` as JSON, or the text `human()` makes.
    pub fn print<T: Serialize>(&mut self, value: &T, human: impl FnOnce() -> String) -> Result<()> {
        if self.json {
            serde_json::to_writer_pretty(&mut *self.out, value)?;
            writeln!(self.out)?;
        } else {
            let text = human();
            if !text.is_empty() {
                writeln!(self.out, "{text}")?;
            }
        }
        Ok(())
    }
}

/// Who the user with `uid` is to the engine. Every user may start, pause and list runs and extend
/// retention; `admin` asks for the rights the seed gives to the DataLock administrator and the
/// data security officer (lifting an Administrative lock, placing and lifting legal holds),
/// which only root (uid 0) is given. A Compliance lock binds root too.
pub fn principal(uid: u32, admin: bool) -> Result<Principal> {
    let name = user_name(uid);
    if !admin {
        return Ok(Principal::user(name));
    }
    if uid != 0 {
        bail!("--admin needs root (uid 0); {name} is uid {uid}");
    }
    Ok(Principal::admin(name))
}

/// The login name of `uid` from `/etc/passwd`, else `uid N`.
fn user_name(uid: u32) -> String {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .find_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let id = fields.nth(1)?.parse::<u32>().ok()?;
            (id == uid).then(|| name.to_owned())
        })
        .unwrap_or_else(|| format!("uid {uid}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_root_gets_admin_rights() {
        assert!(principal(0, true).expect("root").may_unlock_administrative);
        assert!(!principal(0, false).expect("root").may_hold);
        assert!(principal(1000, true).is_err());
        assert!(!principal(1000, false).expect("user").may_unlock_administrative);
        assert_eq!(principal(0, false).expect("root").name, "root");
    }
}
