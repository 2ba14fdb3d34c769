//! The people who use the console: their roles, and their passwords kept as argon2id hashes.
//!
//! Roles, each allowed what the one before is and more: `viewer` sees; `marketer` changes flows, segments,
//! policies and broadcasts; `approver` decides approvals; `admin` manages people, connectors and settings.
//! Passwords are hashed with argon2id at the parameters OWASP recommends (19 MiB, 2 passes, 1 lane), with a
//! random salt each; only the hash is stored, and comparing is constant-time inside argon2.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// The shortest password taken, in characters (of any script).
pub const MIN_PASSWORD_CHARS: usize = 10;
/// The longest, in characters: hashing is bounded whatever is sent (at most 256 bytes).
pub const MAX_PASSWORD_CHARS: usize = 64;

/// How long a session lasts without use, and at most.
pub const SESSION_IDLE_MS: i64 = 8 * 3_600_000;
pub const SESSION_MAX_MS: i64 = 7 * 24 * 3_600_000;
/// Failed sign-ins allowed per account and per client address in one window, before they wait for its end.
pub const FAILURES_PER_ACCOUNT: u32 = 5;
pub const FAILURES_PER_ADDRESS: u32 = 20;
pub const FAILURE_WINDOW_MS: i64 = 15 * 60_000;

/// What a person may do, each role including the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Viewer,
    Marketer,
    Approver,
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Marketer, Role::Approver, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Marketer => "marketer",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// Why a person could not be added or changed.
#[derive(Debug, thiserror::Error)]
pub enum PeopleError {
    #[error("{0}")]
    Invalid(String),
    #[error("someone with the email {0} exists already")]
    Exists(String),
    #[error("nobody has the email {0}")]
    NotFound(String),
    #[error("too many failed sign-ins; try again in {} s", (retry_after_ms + 999) / 1000)]
    TooManyAttempts { retry_after_ms: i64 },
    #[error("storage: {0}")]
    Store(#[from] tutti_store::StoreError),
}

/// An email as people sign in with it: trimmed and lower-cased, one `@` with something on each side, no spaces
/// or control characters, at most 254 bytes (RFC 5321's limit on a path).
pub fn normal_email(raw: &str) -> Result<String, PeopleError> {
    let email = raw.trim().to_lowercase();
    let valid = email.len() <= 254
        && email.split('@').count() == 2
        && email.split('@').all(|part| !part.is_empty())
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid { Ok(email) } else { Err(PeopleError::Invalid(format!("`{}` is not an email address", raw.trim()))) }
}

/// Checks a new password: [`MIN_PASSWORD_CHARS`] to [`MAX_PASSWORD_CHARS`] characters, nothing else. Length is
/// what makes a password hard to guess; rules about kinds of characters only make them harder to remember.
pub fn check_password(password: &str) -> Result<(), PeopleError> {
    let chars = password.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&chars) {
        return Err(PeopleError::Invalid(format!(
            "a password has {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters"
        )));
    }
    Ok(())
}

/// The argon2id hash of `password` with a fresh random salt, as a PHC string.
pub fn hash_password(password: &str) -> Result<String, PeopleError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| PeopleError::Invalid(format!("no randomness for a salt: {e}")))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| PeopleError::Invalid(e.to_string()))?;
    let hash = Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| PeopleError::Invalid(format!("the password cannot be hashed: {e}")))?;
    Ok(hash.to_string())
}

/// Whether `password` is the one `stored` was made from. A stored value that is not a PHC string matches
/// nothing. Takes tens of milliseconds of CPU by design: call it off the async workers.
pub fn password_matches(stored: &str, password: &str) -> bool {
    if password.chars().count() > MAX_PASSWORD_CHARS {
        return false;
    }
    PasswordHash::new(stored)
        .is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// A password for someone added without one: 20 characters from an alphabet without look-alikes (about 100
/// bits), shown once to whoever added them.
pub fn generated_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes).expect("the operating system gives randomness");
    // 256 is not a multiple of 56: the first 8 characters are a little likelier, about 100 bits remain.
    bytes.iter().map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_matches_its_own_hash_only() {
        let hash = hash_password("mật khẩu dài 密码").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(password_matches(&hash, "mật khẩu dài 密码"));
        assert!(!password_matches(&hash, "mật khẩu dài 密碼"));
        assert!(!password_matches("not a phc string", "anything at all"));
        assert_ne!(hash, hash_password("mật khẩu dài 密码").unwrap(), "a fresh salt each time");
    }

    #[test]
    fn passwords_emails_and_roles_are_checked() {
        assert!(check_password("short").is_err());
        assert!(check_password("密码密码密码密码密码").is_ok(), "ten characters in any script");
        assert!(check_password(&"密".repeat(MAX_PASSWORD_CHARS)).is_ok());
        assert!(check_password(&"x".repeat(MAX_PASSWORD_CHARS + 1)).is_err());
        assert_eq!(normal_email("  Hoa@Shop.VN ").unwrap(), "hoa@shop.vn");
        for bad in ["", "hoa", "@shop.vn", "hoa@", "a@b@c", "h oa@shop.vn"] {
            assert!(normal_email(bad).is_err(), "{bad}");
        }
        assert_eq!(Role::parse("approver"), Some(Role::Approver));
        assert_eq!(Role::parse("owner"), None);
        assert!(Role::Admin > Role::Approver && Role::Approver > Role::Marketer && Role::Marketer > Role::Viewer);
        let generated = generated_password();
        assert_eq!(generated.len(), 20);
        assert!(check_password(&generated).is_ok());
    }
}
