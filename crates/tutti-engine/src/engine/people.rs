//! The console's people as the API and the CLI reach them: [`Engine::people`].

use tutti_store::sqlite::StoredPerson;

use crate::Engine;
use crate::people::{
    FAILURE_WINDOW_MS, FAILURES_PER_ACCOUNT, FAILURES_PER_ADDRESS, PeopleError, Role, SESSION_IDLE_MS, SESSION_MAX_MS,
    check_password, hash_password, normal_email, password_matches,
};

/// A person as shown: never the password's hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub email: String,
    pub name: String,
    pub role: Role,
    pub created_at: i64,
    pub password_set_at: i64,
}

impl Person {
    fn from_stored(stored: StoredPerson) -> Person {
        Person {
            // A role this build does not know (written by a later one) is read as the least.
            role: Role::parse(&stored.role).unwrap_or(Role::Viewer),
            email: stored.email,
            name: stored.name,
            created_at: stored.created_at,
            password_set_at: stored.password_set_at,
        }
    }
}

/// People and their roles (`people.db`).
pub struct PeopleHandle<'e> {
    pub(super) engine: &'e Engine,
}

impl Engine {
    /// The people who sign in to the console.
    pub fn people(&self) -> PeopleHandle<'_> {
        PeopleHandle { engine: self }
    }
}

impl PeopleHandle<'_> {
    /// Adds someone. The email is their sign-in (normalised); the password is checked and kept hashed.
    /// Hashing takes tens of milliseconds: call it off the async workers.
    pub fn add(&self, email: &str, name: &str, role: Role, password: &str) -> Result<Person, PeopleError> {
        let email = normal_email(email)?;
        let name = name.trim();
        if name.chars().count() > 200 || name.chars().any(char::is_control) {
            return Err(PeopleError::Invalid("a name has at most 200 characters and no control characters".into()));
        }
        check_password(password)?;
        let now = self.engine.clock.now_ms();
        let stored = StoredPerson {
            email: email.clone(),
            name: name.to_owned(),
            role: role.as_str().to_owned(),
            password_hash: hash_password(password)?,
            created_at: now,
            password_set_at: now,
        };
        if !self.engine.people.add(&stored)? {
            return Err(PeopleError::Exists(email));
        }
        tracing::info!(role = role.as_str(), "a person was added to the console");
        Ok(Person::from_stored(stored))
    }

    /// Everyone, by email.
    pub fn list(&self) -> Result<Vec<Person>, PeopleError> {
        Ok(self.engine.people.list()?.into_iter().map(Person::from_stored).collect())
    }

    /// The person with this email; [`PeopleError::NotFound`] when nobody has it.
    pub fn get(&self, email: &str) -> Result<Person, PeopleError> {
        let email = normal_email(email)?;
        self.engine.people.get(&email)?.map(Person::from_stored).ok_or(PeopleError::NotFound(email))
    }

    pub fn remove(&self, email: &str) -> Result<(), PeopleError> {
        let email = normal_email(email)?;
        if !self.engine.people.remove(&email)? {
            return Err(PeopleError::NotFound(email));
        }
        tracing::info!("a person was removed from the console");
        Ok(())
    }

    /// Sets a new password (checked, hashed). Off the async workers, as [`PeopleHandle::add`].
    pub fn set_password(&self, email: &str, password: &str) -> Result<(), PeopleError> {
        let email = normal_email(email)?;
        check_password(password)?;
        let hash = hash_password(password)?;
        if !self.engine.people.set_password(&email, &hash, self.engine.clock.now_ms())? {
            return Err(PeopleError::NotFound(email));
        }
        Ok(())
    }

    pub fn set_role(&self, email: &str, role: Role) -> Result<(), PeopleError> {
        let email = normal_email(email)?;
        if !self.engine.people.set_role(&email, role.as_str())? {
            return Err(PeopleError::NotFound(email));
        }
        Ok(())
    }

    /// The person whose email and password these are, if they are. An unknown email costs the same hashing
    /// as a wrong password, so the time taken does not say who has an account.
    pub fn verify(&self, email: &str, password: &str) -> Result<Option<Person>, PeopleError> {
        let Ok(email) = normal_email(email) else { return Ok(None) };
        match self.engine.people.get(&email)? {
            Some(stored) if password_matches(&stored.password_hash, password) => Ok(Some(Person::from_stored(stored))),
            Some(_) => Ok(None),
            None => {
                password_matches(unknown_person_hash(), password);
                Ok(None)
            }
        }
    }
}

/// A hash nobody's password makes, checked for an unknown email so that it takes as long as a known one.
fn unknown_person_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password(&crate::people::generated_password()).unwrap_or_default())
}

/// A signed-in person, as a request carrying their session finds them.
#[derive(Debug, Clone)]
pub struct Session {
    pub person: Person,
    /// What a form or an unsafe request must carry besides the cookie (`X-CSRF-Token`).
    pub csrf: String,
    pub expires_at: i64,
}

/// A new session: the token goes in the person's cookie, and nowhere else.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub token: String,
    pub session: Session,
}

/// Failed sign-ins per key (an account, an address) in the current window.
#[derive(Default)]
pub struct SignInFailures(std::sync::Mutex<std::collections::HashMap<String, (u32, i64)>>);

impl SignInFailures {
    /// When `key` may try again, if it has used up `allowed` failures in its window.
    fn blocked_until(&self, key: &str, allowed: u32, now: i64) -> Option<i64> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(key)
            .filter(|(count, start)| *count >= allowed && now < start + FAILURE_WINDOW_MS)
            .map(|(_, s)| s + FAILURE_WINDOW_MS)
    }

    fn failed(&self, key: &str, now: i64) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 100_000 {
            map.retain(|_, (_, start)| now < *start + FAILURE_WINDOW_MS);
        }
        let entry = map.entry(key.to_owned()).or_insert((0, now));
        if now >= entry.1 + FAILURE_WINDOW_MS {
            *entry = (0, now);
        }
        entry.0 += 1;
    }

    fn forget(&self, key: &str) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }
}

/// When a session begun at `created_at` and last used at `last_seen` ends if it is not used again.
fn session_end(created_at: i64, last_seen: i64) -> i64 {
    (last_seen + SESSION_IDLE_MS).min(created_at + SESSION_MAX_MS)
}

pub(super) fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system gives randomness");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn token_hash(token: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

impl PeopleHandle<'_> {
    /// Signs someone in from `address`: a new session when the email and password are theirs, `None` when not.
    /// After [`FAILURES_PER_ACCOUNT`] failures for one account, or [`FAILURES_PER_ADDRESS`] from one address,
    /// in [`FAILURE_WINDOW_MS`], every try fails with [`PeopleError::TooManyAttempts`] until the window ends,
    /// right password or not. Hashes: off the async workers.
    pub fn sign_in(&self, email: &str, password: &str, address: &str) -> Result<Option<SignedIn>, PeopleError> {
        let now = self.engine.clock.now_ms();
        let account = format!("account:{}", email.trim().to_lowercase());
        let from = format!("address:{address}");
        let failures = &self.engine.sign_in_failures;
        let blocked = [(&account, FAILURES_PER_ACCOUNT), (&from, FAILURES_PER_ADDRESS)]
            .into_iter()
            .filter_map(|(key, allowed)| failures.blocked_until(key, allowed, now))
            .max();
        if let Some(until) = blocked {
            return Err(PeopleError::TooManyAttempts { retry_after_ms: until - now });
        }
        let Some(person) = self.verify(email, password)? else {
            failures.failed(&account, now);
            failures.failed(&from, now);
            tracing::info!("a sign-in failed");
            self.note_sign_in(email, "refused", address);
            return Ok(None);
        };
        failures.forget(&account);
        let token = random_hex();
        let stored = tutti_store::sqlite::StoredSession {
            token_hash: token_hash(&token),
            email: person.email.clone(),
            csrf: random_hex(),
            created_at: now,
            last_seen: now,
        };
        self.engine.people.add_session(&stored)?;
        tracing::info!(role = person.role.as_str(), "someone signed in");
        self.note_sign_in(&person.email, "signed_in", address);
        let expires_at = session_end(now, now);
        Ok(Some(SignedIn { token, session: Session { person, csrf: stored.csrf, expires_at } }))
    }

    /// Puts a sign-in on the audit log. A failure to write it is logged, not the sign-in's failure: the audit
    /// log being unwritable must not lock everyone out.
    fn note_sign_in(&self, email: &str, outcome: &str, address: &str) {
        let email = email.trim().to_lowercase();
        let detail = serde_json::json!({"outcome": outcome, "address": address});
        if let Err(e) = self.engine.record(tutti_core::audit::AuditKind::SignIn, &email, None, None, detail) {
            tracing::warn!(error = %e, "a sign-in could not be put on the audit log");
        }
    }

    /// The session a cookie's token names, while it lasts (it ends unused for [`SESSION_IDLE_MS`], after
    /// [`SESSION_MAX_MS`] in any case, and with its person or their password).
    pub fn session(&self, token: &str) -> Result<Option<Session>, PeopleError> {
        if token.len() != 64 {
            return Ok(None);
        }
        let hash = token_hash(token);
        let Some(stored) = self.engine.people.session(&hash)? else { return Ok(None) };
        let now = self.engine.clock.now_ms();
        if now - stored.last_seen >= SESSION_IDLE_MS || now - stored.created_at >= SESSION_MAX_MS {
            self.engine.people.remove_session(&hash)?;
            return Ok(None);
        }
        let Some(person) = self.engine.people.get(&stored.email)?.map(Person::from_stored) else {
            self.engine.people.remove_session(&hash)?;
            return Ok(None);
        };
        // Written at most once a minute: a page's many requests do not each write.
        let last_seen = if now - stored.last_seen >= 60_000 {
            self.engine.people.touch_session(&hash, now)?;
            now
        } else {
            stored.last_seen
        };
        let expires_at = session_end(stored.created_at, last_seen);
        Ok(Some(Session { person, csrf: stored.csrf, expires_at }))
    }

    /// Ends the session `token` names (signing out on this device).
    pub fn sign_out(&self, token: &str) -> Result<(), PeopleError> {
        Ok(self.engine.people.remove_session(&token_hash(token))?)
    }

    /// Ends every session of `email` (signing out everywhere); how many there were.
    /// [`PeopleError::NotFound`] when nobody has the email.
    pub fn sign_out_everywhere(&self, email: &str) -> Result<usize, PeopleError> {
        let person = self.get(email)?;
        Ok(self.engine.people.remove_sessions_of(&person.email)?)
    }
}
