//! `people.db`: the people who sign in to the console, with their role and their password's hash, their
//! sessions, and their personal API tokens. Its own file: written when someone signs in or an admin changes someone, never on the event path,
//! and kept whole when profiles are erased (these are the team's accounts, not customers).

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};
use tutti_core::Millis;

use super::open_side;
use crate::Result;

pub const PEOPLE_FILE: &str = "people.db";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS people (
    email           TEXT    PRIMARY KEY,
    name            TEXT    NOT NULL,
    role            TEXT    NOT NULL,
    password_hash   TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    password_set_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT    PRIMARY KEY,
    email      TEXT    NOT NULL,
    csrf       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sessions_by_email ON sessions (email);
CREATE TABLE IF NOT EXISTS tokens (
    token_hash TEXT    PRIMARY KEY,
    email      TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    last_used  INTEGER,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tokens_by_email ON tokens (email);
";

/// A personal API token, as stored: the SHA-256 of the token (the token itself is shown once, when made), whose
/// it is, what its owner called it, and when it was made, last used and ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredToken {
    pub token_hash: String,
    pub email: String,
    pub name: String,
    pub created_at: Millis,
    pub last_used: Option<Millis>,
    pub expires_at: Millis,
}

/// A signed-in session, as stored: the SHA-256 of its token (the token itself is only in the person's
/// cookie), whose it is, the token forms must carry, and when it began and was last used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    pub token_hash: String,
    pub email: String,
    pub csrf: String,
    pub created_at: Millis,
    pub last_seen: Millis,
}

/// One person, as stored. `password_hash` is a PHC string (`$argon2id$v=19$...`); the password itself is never
/// stored.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredPerson {
    /// Lower-cased and trimmed: the key people sign in with.
    pub email: String,
    pub name: String,
    pub role: String,
    pub password_hash: String,
    pub created_at: Millis,
    pub password_set_at: Millis,
}

impl std::fmt::Debug for StoredPerson {
    /// Everything but the hash.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredPerson")
            .field("email", &self.email)
            .field("name", &self.name)
            .field("role", &self.role)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// The people table. One connection: every call is a point read or write, or the short list.
pub struct SqlitePeople {
    conn: Mutex<Connection>,
}

impl SqlitePeople {
    pub fn open(path: &Path) -> Result<SqlitePeople> {
        let conn = open_side(path, 1024, SCHEMA)?;
        Ok(SqlitePeople { conn: Mutex::new(conn) })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `person`; `false` (and nothing changed) when someone with that email exists.
    pub fn add(&self, person: &StoredPerson) -> Result<bool> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "INSERT INTO people (email, name, role, password_hash, created_at, password_set_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (email) DO NOTHING",
        )?;
        let added = stmt.execute(params![
            person.email,
            person.name,
            person.role,
            person.password_hash,
            person.created_at,
            person.password_set_at
        ])?;
        Ok(added == 1)
    }

    pub fn get(&self, email: &str) -> Result<Option<StoredPerson>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT email, name, role, password_hash, created_at, password_set_at FROM people WHERE email = ?1",
        )?;
        Ok(stmt.query_row(params![email], row).optional()?)
    }

    /// Everyone, by email.
    pub fn list(&self) -> Result<Vec<StoredPerson>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT email, name, role, password_hash, created_at, password_set_at FROM people ORDER BY email",
        )?;
        let rows = stmt.query_map([], row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Removes someone and their sessions; `false` when nobody has that email.
    pub fn remove(&self, email: &str) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let removed = tx.prepare_cached("DELETE FROM people WHERE email = ?1")?.execute(params![email])? == 1;
        tx.prepare_cached("DELETE FROM sessions WHERE email = ?1")?.execute(params![email])?;
        tx.prepare_cached("DELETE FROM tokens WHERE email = ?1")?.execute(params![email])?;
        tx.commit()?;
        Ok(removed)
    }

    pub fn add_session(&self, session: &StoredSession) -> Result<()> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "INSERT INTO sessions (token_hash, email, csrf, created_at, last_seen) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        stmt.execute(params![session.token_hash, session.email, session.csrf, session.created_at, session.last_seen])?;
        Ok(())
    }

    pub fn session(&self, token_hash: &str) -> Result<Option<StoredSession>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT token_hash, email, csrf, created_at, last_seen FROM sessions WHERE token_hash = ?1",
        )?;
        let session = stmt.query_row(params![token_hash], |r| {
            Ok(StoredSession {
                token_hash: r.get(0)?,
                email: r.get(1)?,
                csrf: r.get(2)?,
                created_at: r.get(3)?,
                last_seen: r.get(4)?,
            })
        });
        Ok(session.optional()?)
    }

    pub fn touch_session(&self, token_hash: &str, at: Millis) -> Result<()> {
        let conn = self.conn();
        conn.prepare_cached("UPDATE sessions SET last_seen = ?2 WHERE token_hash = ?1")?
            .execute(params![token_hash, at])?;
        Ok(())
    }

    pub fn remove_session(&self, token_hash: &str) -> Result<()> {
        let conn = self.conn();
        conn.prepare_cached("DELETE FROM sessions WHERE token_hash = ?1")?.execute(params![token_hash])?;
        Ok(())
    }

    /// Ends every session of `email` (sign out everywhere); how many there were.
    pub fn remove_sessions_of(&self, email: &str) -> Result<usize> {
        let conn = self.conn();
        Ok(conn.prepare_cached("DELETE FROM sessions WHERE email = ?1")?.execute(params![email])?)
    }

    /// Replaces the password's hash and ends the person's sessions; `false` when nobody has that email.
    pub fn set_password(&self, email: &str, password_hash: &str, at: Millis) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let changed = tx
            .prepare_cached("UPDATE people SET password_hash = ?2, password_set_at = ?3 WHERE email = ?1")?
            .execute(params![email, password_hash, at])?
            == 1;
        tx.prepare_cached("DELETE FROM sessions WHERE email = ?1")?.execute(params![email])?;
        tx.commit()?;
        Ok(changed)
    }

    pub fn add_token(&self, token: &StoredToken) -> Result<()> {
        let conn = self.conn();
        conn.prepare_cached(
            "INSERT INTO tokens (token_hash, email, name, created_at, last_used, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![token.token_hash, token.email, token.name, token.created_at, token.last_used, token.expires_at])?;
        Ok(())
    }

    pub fn token(&self, token_hash: &str) -> Result<Option<StoredToken>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT token_hash, email, name, created_at, last_used, expires_at FROM tokens WHERE token_hash = ?1",
        )?;
        Ok(stmt.query_row(params![token_hash], token_row).optional()?)
    }

    /// Someone's tokens, newest first.
    pub fn tokens_of(&self, email: &str) -> Result<Vec<StoredToken>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT token_hash, email, name, created_at, last_used, expires_at FROM tokens WHERE email = ?1
             ORDER BY created_at DESC, token_hash",
        )?;
        let rows = stmt.query_map(params![email], token_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Removes one of someone's tokens by its hash; `false` when they have none such.
    pub fn remove_token(&self, email: &str, token_hash: &str) -> Result<bool> {
        let conn = self.conn();
        let removed = conn
            .prepare_cached("DELETE FROM tokens WHERE email = ?1 AND token_hash = ?2")?
            .execute(params![email, token_hash])?;
        Ok(removed == 1)
    }

    pub fn touch_token(&self, token_hash: &str, at: Millis) -> Result<()> {
        let conn = self.conn();
        conn.prepare_cached("UPDATE tokens SET last_used = ?2 WHERE token_hash = ?1")?
            .execute(params![token_hash, at])?;
        Ok(())
    }

    /// Changes the role; `false` when nobody has that email.
    pub fn set_role(&self, email: &str, role: &str) -> Result<bool> {
        let conn = self.conn();
        Ok(conn.prepare_cached("UPDATE people SET role = ?2 WHERE email = ?1")?.execute(params![email, role])? == 1)
    }
}

fn token_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredToken> {
    Ok(StoredToken {
        token_hash: r.get(0)?,
        email: r.get(1)?,
        name: r.get(2)?,
        created_at: r.get(3)?,
        last_used: r.get(4)?,
        expires_at: r.get(5)?,
    })
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredPerson> {
    Ok(StoredPerson {
        email: r.get(0)?,
        name: r.get(1)?,
        role: r.get(2)?,
        password_hash: r.get(3)?,
        created_at: r.get(4)?,
        password_set_at: r.get(5)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(email: &str, role: &str) -> StoredPerson {
        StoredPerson {
            email: email.into(),
            name: "Nguyễn Hoa 阮花".into(),
            role: role.into(),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            created_at: 1,
            password_set_at: 1,
        }
    }

    #[test]
    fn people_are_added_once_changed_listed_removed_and_kept_across_opens() {
        let dir = tempfile::tempdir().unwrap();
        let people = SqlitePeople::open(&dir.path().join(PEOPLE_FILE)).unwrap();
        assert!(people.add(&person("hoa@shop.vn", "admin")).unwrap());
        assert!(!people.add(&person("hoa@shop.vn", "viewer")).unwrap(), "the same email twice");
        assert!(people.add(&person("an@shop.vn", "marketer")).unwrap());
        assert_eq!(people.get("hoa@shop.vn").unwrap().unwrap().role, "admin", "the first one stands");
        assert!(people.set_password("an@shop.vn", "$argon2id$new", 5).unwrap());
        assert!(people.set_role("an@shop.vn", "approver").unwrap());
        assert!(!people.set_role("nobody@shop.vn", "admin").unwrap());
        let listed: Vec<String> = people.list().unwrap().into_iter().map(|p| p.email).collect();
        assert_eq!(listed, ["an@shop.vn", "hoa@shop.vn"]);
        assert!(people.remove("hoa@shop.vn").unwrap());
        assert!(!people.remove("hoa@shop.vn").unwrap());
        drop(people);
        let again = SqlitePeople::open(&dir.path().join(PEOPLE_FILE)).unwrap();
        let an = again.get("an@shop.vn").unwrap().unwrap();
        assert_eq!((an.role.as_str(), an.password_hash.as_str(), an.password_set_at), ("approver", "$argon2id$new", 5));
        assert!(!format!("{an:?}").contains("argon2"), "the hash is not in Debug");
    }

    #[test]
    fn sessions_end_with_their_person_and_with_a_new_password() {
        let dir = tempfile::tempdir().unwrap();
        let people = SqlitePeople::open(&dir.path().join(PEOPLE_FILE)).unwrap();
        people.add(&person("hoa@shop.vn", "admin")).unwrap();
        people.add(&person("an@shop.vn", "viewer")).unwrap();
        let session = |hash: &str, email: &str| StoredSession {
            token_hash: hash.into(),
            email: email.into(),
            csrf: format!("csrf-{hash}"),
            created_at: 10,
            last_seen: 10,
        };
        for (hash, email) in [("h1", "hoa@shop.vn"), ("h2", "hoa@shop.vn"), ("a1", "an@shop.vn")] {
            people.add_session(&session(hash, email)).unwrap();
        }
        people.touch_session("h1", 20).unwrap();
        assert_eq!(people.session("h1").unwrap().unwrap().last_seen, 20);
        people.remove_session("h1").unwrap();
        assert_eq!(people.session("h1").unwrap(), None);
        assert!(people.set_password("hoa@shop.vn", "$argon2id$new", 30).unwrap());
        assert_eq!(people.session("h2").unwrap(), None, "a new password ends the sessions");
        assert_eq!(people.remove_sessions_of("an@shop.vn").unwrap(), 1);
        people.add_session(&session("a2", "an@shop.vn")).unwrap();
        assert!(people.remove("an@shop.vn").unwrap());
        assert_eq!(people.session("a2").unwrap(), None, "removing someone ends their sessions");
    }
}
