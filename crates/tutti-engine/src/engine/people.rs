//! The console's people as the API and the CLI reach them: [`Engine::people`].

use tutti_store::sqlite::StoredPerson;

use crate::Engine;
use crate::people::{PeopleError, Role, check_password, hash_password, normal_email, password_matches};

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
    engine: &'e Engine,
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

    pub fn get(&self, email: &str) -> Result<Option<Person>, PeopleError> {
        let email = normal_email(email)?;
        Ok(self.engine.people.get(&email)?.map(Person::from_stored))
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
