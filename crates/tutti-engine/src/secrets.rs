//! The write key, the admin token and the erasure key: from configuration, or generated on first start and kept
//! in `secrets.toml` inside the data directory (mode 0600). Secrets never reach the log.

use std::fmt;
use std::io::Write;
use std::path::Path;

use crate::config::AuthConfig;

/// File name inside the data directory.
pub const SECRETS_FILE: &str = "secrets.toml";

/// The engine's secrets.
#[derive(Clone)]
pub struct Secrets {
    pub write_key: String,
    pub admin_token: String,
    /// Key of the keyed hash that turns erased identifiers into tombstones.
    pub erasure_key: [u8; 32],
    /// Which of `write_key` / `admin_token` were generated and not yet shown to the operator: by this start, or by
    /// an earlier one that failed before it could show them. Shown once, then [`Secrets::mark_shown`].
    pub generated: Vec<&'static str>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secrets").field("generated", &self.generated).finish_non_exhaustive()
    }
}

impl Secrets {
    /// What identifies the erasure key without revealing it: workers sharing a database compare it, since
    /// tombstones made with one key do not match identifiers hashed with another.
    pub fn erasure_key_fingerprint(&self) -> String {
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&self.erasure_key).expect("HMAC takes keys of any length");
        mac.update(b"tutti erasure key fingerprint");
        mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The key that signs links Tutti serves itself (one-click unsubscribe): derived from the erasure key, so
    /// it is stable across restarts and never stored on its own.
    pub fn link_key(&self) -> [u8; 32] {
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&self.erasure_key).expect("HMAC takes keys of any length");
        mac.update(b"tutti link signing key");
        mac.finalize().into_bytes().into()
    }
}

fn random_hex(bytes: usize) -> std::io::Result<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

fn parse_hex32(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, chunk) in text.as_bytes().chunks(2).enumerate() {
        out[i] = u8::from_str_radix(std::str::from_utf8(chunk).ok()?, 16).ok()?;
    }
    Some(out)
}

impl Secrets {
    /// Reads the stored secrets, generates what is missing, and stores them back.
    /// Configured values win over stored ones but are never written to the file.
    pub fn load_or_generate(dir: &Path, auth: &AuthConfig) -> std::io::Result<Secrets> {
        std::fs::create_dir_all(dir)?;
        let stored = read_secrets(dir)?;
        let get = |k: &str| stored.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        let unshown: Vec<String> = stored
            .get(UNSHOWN)
            .and_then(|v| v.as_array())
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        let mut file = stored.clone();
        let mut generated = Vec::new();
        let mut pick = |name: &'static str, configured: &Option<String>, make: fn() -> std::io::Result<String>| {
            if let Some(v) = configured.as_ref().filter(|v| !v.is_empty()) {
                return Ok::<_, std::io::Error>(v.clone());
            }
            if let Some(v) = get(name) {
                if unshown.iter().any(|u| u == name) {
                    generated.push(name);
                }
                return Ok(v);
            }
            let v = make()?;
            file.insert(name.into(), toml::Value::String(v.clone()));
            generated.push(name);
            Ok(v)
        };
        let write_key = pick("write_key", &auth.write_key, || random_hex(16))?;
        let admin_token = pick("admin_token", &auth.admin_token, || Ok(format!("tutti_{}", random_hex(24)?)))?;
        let configured = auth.erasure_key.as_deref().filter(|k| !k.is_empty());
        let erasure_key = match configured.map(|k| parse_hex32(k.trim())) {
            Some(Some(k)) => k,
            Some(None) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "auth.erasure_key is not 64 hexadecimal digits (make one with `openssl rand -hex 32`)",
                ));
            }
            None => match get("erasure_key").as_deref().and_then(parse_hex32) {
                Some(k) => k,
                None => {
                    let hex = random_hex(32)?;
                    file.insert("erasure_key".into(), toml::Value::String(hex.clone()));
                    parse_hex32(&hex).expect("64 hex digits")
                }
            },
        };
        if generated.is_empty() {
            file.remove(UNSHOWN);
        } else {
            file.insert(UNSHOWN.into(), toml::Value::Array(generated.iter().map(|g| (*g).into()).collect()));
        }
        if file != stored {
            write_secrets(dir, &file)?;
        }
        Ok(Secrets { write_key, admin_token, erasure_key, generated })
    }

    /// The admin token stored in `dir`'s `secrets.toml`, for the command line on the same machine: `None` when
    /// the file holds none.
    pub fn stored_admin_token(dir: &Path) -> std::io::Result<Option<String>> {
        let file = read_secrets(dir)?;
        Ok(file.get("admin_token").and_then(|v| v.as_str()).map(str::to_owned))
    }

    /// Records that the generated credentials were shown, so later starts do not show them again.
    pub fn mark_shown(dir: &Path) -> std::io::Result<()> {
        let mut file = read_secrets(dir)?;
        if file.remove(UNSHOWN).is_some() {
            write_secrets(dir, &file)?;
        }
        Ok(())
    }
}

/// The key of `secrets.toml` listing generated credentials not yet shown.
const UNSHOWN: &str = "unshown";

/// What `secrets.toml` holds; empty before the first start.
fn read_secrets(dir: &Path) -> std::io::Result<toml::Table> {
    let path = dir.join(SECRETS_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => text.parse().map_err(|e| std::io::Error::other(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(toml::Table::new()),
        Err(e) => Err(e),
    }
}

/// Replaces `secrets.toml` atomically, readable by its owner only.
fn write_secrets(dir: &Path, file: &toml::Table) -> std::io::Result<()> {
    let tmp = dir.join(format!("{SECRETS_FILE}.tmp"));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(&tmp)?;
    f.write_all(toml::to_string(file).map_err(std::io::Error::other)?.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(SECRETS_FILE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_then_reused_and_config_wins() {
        let dir = tempfile::tempdir().unwrap();
        let first = Secrets::load_or_generate(dir.path(), &AuthConfig::default()).unwrap();
        assert_eq!(first.generated, ["write_key", "admin_token"]);
        assert_eq!(first.write_key.len(), 32);
        // A start that failed before showing them: the next start still shows them.
        let again = Secrets::load_or_generate(dir.path(), &AuthConfig::default()).unwrap();
        assert_eq!(again.generated, ["write_key", "admin_token"]);
        Secrets::mark_shown(dir.path()).unwrap();
        let again = Secrets::load_or_generate(dir.path(), &AuthConfig::default()).unwrap();
        assert!(again.generated.is_empty(), "shown once");
        assert_eq!((again.write_key.as_str(), again.erasure_key), (first.write_key.as_str(), first.erasure_key));
        let configured = AuthConfig { write_key: Some("mine".into()), admin_token: None, erasure_key: None };
        let s = Secrets::load_or_generate(dir.path(), &configured).unwrap();
        assert_eq!(s.write_key, "mine");
        assert!(!std::fs::read_to_string(dir.path().join(SECRETS_FILE)).unwrap().contains("mine"));
        assert!(!format!("{s:?}").contains(&s.admin_token));
        // A configured erasure key (the one every worker sharing a database takes) wins over the stored one and
        // is never written; one that is not 64 hex digits is refused.
        let key = "ab".repeat(32);
        let shared = AuthConfig { erasure_key: Some(key.clone()), ..AuthConfig::default() };
        let s = Secrets::load_or_generate(dir.path(), &shared).unwrap();
        assert_eq!(s.erasure_key, [0xab; 32]);
        assert_ne!(s.erasure_key_fingerprint(), first.erasure_key_fingerprint());
        assert!(!std::fs::read_to_string(dir.path().join(SECRETS_FILE)).unwrap().contains(&key));
        let short = AuthConfig { erasure_key: Some("abc".into()), ..AuthConfig::default() };
        let refused = Secrets::load_or_generate(dir.path(), &short).unwrap_err().to_string();
        assert!(refused.contains("64 hexadecimal digits") && !refused.contains("abc"), "{refused}");
    }

    #[test]
    fn the_command_line_reads_the_stored_token_however_the_file_is_laid_out() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Secrets::stored_admin_token(dir.path()).unwrap(), None, "no file yet");
        let generated = Secrets::load_or_generate(dir.path(), &AuthConfig::default()).unwrap();
        assert_eq!(Secrets::stored_admin_token(dir.path()).unwrap().as_deref(), Some(generated.admin_token.as_str()));
        // Edited by hand: no spaces, another key first, a comment.
        std::fs::write(dir.path().join(SECRETS_FILE), "# mine\nwrite_key='k'\nadmin_token=\"t0k\"\n").unwrap();
        assert_eq!(Secrets::stored_admin_token(dir.path()).unwrap().as_deref(), Some("t0k"));
    }
}
