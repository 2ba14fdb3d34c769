//! Personal API tokens: what a person uses instead of their session when a script or the CLI acts for them.
//! A token acts as its person with their role as it is at each request; it is shown once when made, kept only
//! as its SHA-256, ends at its expiry, when revoked, or with its person.

use tutti_store::sqlite::StoredToken;

use super::people::{random_hex, token_hash};
use crate::engine::{PeopleHandle, Person};
use crate::people::PeopleError;

/// What every personal token starts with, so the API tells it from the admin token at a glance (and secret
/// scanners find one pasted where it should not be).
pub const TOKEN_PREFIX: &str = "tutti_pat_";
/// The longest a token may last, in days; the default when none is asked for.
pub const MAX_TOKEN_DAYS: u32 = 365;
pub const DEFAULT_TOKEN_DAYS: u32 = 90;

/// A token as its owner sees it in the list: never the token itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// The first 12 characters of the token's SHA-256: how a token is named to revoke it.
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub last_used: Option<i64>,
    pub expires_at: i64,
}

impl TokenInfo {
    fn of(stored: &StoredToken) -> TokenInfo {
        TokenInfo {
            id: stored.token_hash[..12].to_owned(),
            name: stored.name.clone(),
            created_at: stored.created_at,
            last_used: stored.last_used,
            expires_at: stored.expires_at,
        }
    }
}

impl PeopleHandle<'_> {
    /// Makes a token for `email`, called `name`, lasting `days` (1 to [`MAX_TOKEN_DAYS`]). Returns the token,
    /// which is never shown again, and its entry.
    pub fn create_token(&self, email: &str, name: &str, days: u32) -> Result<(String, TokenInfo), PeopleError> {
        let person = self.get(email)?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(PeopleError::Invalid(
                "a token's name has 1 to 100 characters and no control characters".into(),
            ));
        }
        if !(1..=MAX_TOKEN_DAYS).contains(&days) {
            return Err(PeopleError::Invalid(format!("a token lasts 1 to {MAX_TOKEN_DAYS} days")));
        }
        let token = format!("{TOKEN_PREFIX}{}", random_hex());
        let now = self.engine.clock.now_ms();
        let stored = StoredToken {
            token_hash: token_hash(&token),
            email: person.email,
            name: name.to_owned(),
            created_at: now,
            last_used: None,
            expires_at: now + i64::from(days) * 86_400_000,
        };
        self.engine.people.add_token(&stored)?;
        Ok((token, TokenInfo::of(&stored)))
    }

    /// Someone's tokens, newest first.
    pub fn tokens(&self, email: &str) -> Result<Vec<TokenInfo>, PeopleError> {
        let person = self.get(email)?;
        Ok(self.engine.people.tokens_of(&person.email)?.iter().map(TokenInfo::of).collect())
    }

    /// Revokes one of someone's tokens by its id; `false` when they have none such.
    pub fn revoke_token(&self, email: &str, id: &str) -> Result<bool, PeopleError> {
        let person = self.get(email)?;
        let stored = self.engine.people.tokens_of(&person.email)?;
        let Some(token) = stored.iter().find(|t| t.token_hash.starts_with(id) && id.len() == 12) else {
            return Ok(false);
        };
        Ok(self.engine.people.remove_token(&person.email, &token.token_hash)?)
    }

    /// The person a token acts for, while it lasts.
    pub fn person_for_token(&self, token: &str) -> Result<Option<Person>, PeopleError> {
        if !token.starts_with(TOKEN_PREFIX) || token.len() != TOKEN_PREFIX.len() + 64 {
            return Ok(None);
        }
        let hash = token_hash(token);
        let engine = self.engine;
        let Some(stored) = engine.people.token(&hash)? else { return Ok(None) };
        let now = engine.clock.now_ms();
        if now >= stored.expires_at {
            return Ok(None);
        }
        let Ok(person) = self.get(&stored.email) else { return Ok(None) };
        // Written at most once a minute.
        if stored.last_used.is_none_or(|at| now - at >= 60_000) {
            engine.people.touch_token(&hash, now)?;
        }
        Ok(Some(person))
    }
}
