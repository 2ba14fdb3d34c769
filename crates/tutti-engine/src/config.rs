//! Configuration: one typed tree. Defaults, then `tutti.toml`, then `TUTTI_SECTION__KEY` environment
//! variables, then command-line flags. Unknown keys are errors that name the key.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use tutti_core::IdentityConfig;

/// Configuration errors, each naming the file, variable or key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
}

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub auth: AuthConfig,
    pub intake: IntakeConfig,
    pub identity: IdentitySection,
    pub log: LogConfig,
    pub flows: FlowsConfig,
    pub webhook: WebhookConfig,
    pub insights: InsightsConfig,
}

/// Creative intelligence.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InsightsConfig {
    /// A taxonomy file (JSON; `tutti insights taxonomy` prints the default to start from). Default: tone,
    /// purpose, structure and offer framing.
    pub taxonomy: Option<PathBuf>,
    /// Labelled creatives (JSON lines) to train on besides the shipped ones, for traits of one's own.
    pub examples: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowsConfig {
    /// Directory of flow, segment and policy YAML files loaded at start (default: `./flows` when present).
    pub dir: Option<PathBuf>,
}

/// The built-in `webhook` connector.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// Hosts or IP addresses webhooks may reach although they are private, loopback or link-local, such as
    /// `["127.0.0.1", "hooks.internal"]`. Everything else private is refused (no server-side request forgery).
    pub allow_private: Vec<String>,
    /// How long one delivery may take.
    #[serde(deserialize_with = "duration")]
    pub timeout: Duration,
    /// Attempts before an action becomes a dead letter.
    pub max_attempts: u32,
    /// When set, each request carries `Tutti-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`.
    pub signing_secret: Option<String>,
    /// Deliveries in flight at once. One profile's actions are delivered one after another, in order.
    pub concurrency: usize,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            allow_private: Vec::new(),
            timeout: Duration::from_secs(10),
            max_attempts: 8,
            signing_secret: None,
            concurrency: 16,
        }
    }
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("allow_private", &self.allow_private)
            .field("timeout", &self.timeout)
            .field("max_attempts", &self.max_attempts)
            .field("signing_secret", &self.signing_secret.as_ref().map(|_| "<redacted>"))
            .field("concurrency", &self.concurrency)
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address of the HTTP server.
    pub listen: SocketAddr,
    /// A client must send a request's headers within this, or the connection is closed (slowloris).
    #[serde(deserialize_with = "duration")]
    pub header_read_timeout: Duration,
    /// A client must send a request's body within this, or gets 408.
    #[serde(deserialize_with = "duration")]
    pub body_read_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8910)),
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Where the embedded databases and generated secrets live.
    pub data_dir: PathBuf,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig { data_dir: PathBuf::from("./tutti-data") }
    }
}

/// Secrets. When absent they are generated on first start and kept in the data directory.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// The Segment write key that tracking clients send.
    pub write_key: Option<String>,
    /// The bearer token of the admin API.
    pub admin_token: Option<String>,
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |s: &Option<String>| if s.is_some() { "<redacted>" } else { "<unset>" };
        f.debug_struct("AuthConfig")
            .field("write_key", &shown(&self.write_key))
            .field("admin_token", &shown(&self.admin_token))
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IntakeConfig {
    /// How long a `messageId` is remembered for deduplication, such as `"24h"` or `"7d"`.
    #[serde(deserialize_with = "duration")]
    pub dedup_retention: Duration,
    /// The most events written in one group commit.
    pub max_commit_events: usize,
}

impl Default for IntakeConfig {
    fn default() -> Self {
        IntakeConfig { dedup_retention: Duration::from_secs(24 * 3600), max_commit_events: 20_000 }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentitySection {
    /// The most distinct user ids one profile may hold; beyond it, lower-priority identifiers are not merged.
    pub max_user_ids: usize,
    /// Trait names that identify a person too, such as `zalo_id`.
    pub identifier_traits: Vec<String>,
    /// Country calling code for phone numbers written without one, such as `"84"`.
    pub default_country_code: Option<String>,
}

impl Default for IdentitySection {
    fn default() -> Self {
        let core = IdentityConfig::default();
        IdentitySection {
            max_user_ids: core.max_user_ids,
            identifier_traits: core.identifier_traits,
            default_country_code: core.default_country_code,
        }
    }
}

impl IdentitySection {
    pub fn to_core(&self) -> IdentityConfig {
        IdentityConfig {
            max_user_ids: self.max_user_ids.max(1),
            identifier_traits: self.identifier_traits.clone(),
            default_country_code: self.default_country_code.clone(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `error`, `warn`, `info`, `debug` or `trace`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { level: "info".into() }
    }
}

/// Parses `90s`, `15m`, `24h`, `7d` or a plain number of seconds.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86_400)?,
        _ => return None,
    };
    Some(Duration::from_secs(secs))
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Seconds(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Seconds(s) => Ok(Duration::from_secs(s)),
        Raw::Text(t) => parse_duration(&t)
            .ok_or_else(|| serde::de::Error::custom(format!("invalid duration {t:?}; use 90s, 15m, 24h or 7d"))),
    }
}

/// Command-line values that override everything else.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub flows_dir: Option<PathBuf>,
}

impl Config {
    /// Loads the configuration.
    ///
    /// `file`: an explicit config file (must exist), or `None` to read `./tutti.toml` when it exists.
    /// `env`: the environment, as `(name, value)` pairs; `TUTTI_SECTION__KEY` sets `section.key`, and
    /// `TUTTI_WRITE_KEY` / `TUTTI_ADMIN_TOKEN` set the two secrets.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        let (mut table, origin) = match file {
            Some(path) => (read_table(path)?, path.display().to_string()),
            None if Path::new("tutti.toml").exists() => (read_table(Path::new("tutti.toml"))?, "tutti.toml".into()),
            None => (toml::Table::new(), String::from("configuration")),
        };
        let mut env_names = Vec::new();
        let env: BTreeMap<String, String> = env.into_iter().filter(|(k, _)| k.starts_with("TUTTI_")).collect();
        for (name, value) in &env {
            let path: Vec<String> = match name.as_str() {
                "TUTTI_WRITE_KEY" => vec!["auth".into(), "write_key".into()],
                "TUTTI_ADMIN_TOKEN" => vec!["auth".into(), "admin_token".into()],
                _ => match name["TUTTI_".len()..].split_once("__") {
                    Some((section, key)) if !section.is_empty() && !key.is_empty() => {
                        vec![section.to_lowercase(), key.to_lowercase()]
                    }
                    _ => continue,
                },
            };
            env_names.push(name.clone());
            let section = table
                .entry(path[0].clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .ok_or_else(|| ConfigError::Invalid {
                    origin: name.clone(),
                    message: format!("{} is not a section", path[0]),
                })?;
            section.insert(path[1].clone(), env_value(value));
        }
        let mut config = Config::deserialize(toml::Value::Table(table)).map_err(|e| {
            let origin =
                if env_names.is_empty() { origin.clone() } else { format!("{origin} with {}", env_names.join(", ")) };
            ConfigError::Invalid { origin, message: e.to_string().trim().replace('\n', " ") }
        })?;
        if let Some(listen) = overrides.listen {
            config.server.listen = listen;
        }
        if let Some(dir) = &overrides.data_dir {
            config.storage.data_dir = dir.clone();
        }
        if let Some(dir) = &overrides.flows_dir {
            config.flows.dir = Some(dir.clone());
        }
        Ok(config)
    }
}

fn read_table(path: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
    text.parse::<toml::Table>().map_err(|e| ConfigError::Invalid {
        origin: path.display().to_string(),
        message: e.to_string().trim().replace('\n', " "),
    })
}

/// An environment value is read as a TOML value when it parses as one (`5`, `true`, `["a"]`), else as a string.
fn env_value(raw: &str) -> toml::Value {
    format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_need_no_file() {
        let c = Config::load(None, env(&[]), &Overrides::default()).unwrap();
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:8910");
        assert_eq!(c.storage.data_dir, PathBuf::from("./tutti-data"));
        assert_eq!(c.identity.max_user_ids, 1);
    }

    #[test]
    fn file_then_env_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tutti.toml");
        std::fs::write(
            &file,
            "[server]\nlisten = \"127.0.0.1:1\"\n[intake]\ndedup_retention = \"7d\"\n[identity]\nmax_user_ids = 3\n",
        )
        .unwrap();
        let c = Config::load(
            Some(&file),
            env(&[
                ("TUTTI_SERVER__LISTEN", "127.0.0.1:2"),
                ("TUTTI_IDENTITY__IDENTIFIER_TRAITS", "[\"zalo_id\"]"),
                ("TUTTI_WRITE_KEY", "wk"),
                ("PATH", "/bin"),
            ]),
            &Overrides { data_dir: Some("/tmp/x".into()), ..Overrides::default() },
        )
        .unwrap();
        assert_eq!(c.server.listen.port(), 2);
        assert_eq!(c.intake.dedup_retention, Duration::from_secs(7 * 86_400));
        assert_eq!(c.identity.max_user_ids, 3);
        assert_eq!(c.identity.identifier_traits, ["zalo_id"]);
        assert_eq!(c.auth.write_key.as_deref(), Some("wk"));
        assert_eq!(c.storage.data_dir, PathBuf::from("/tmp/x"));
        assert!(!format!("{:?}", c.auth).contains("wk"), "secrets must not appear in debug output");
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = Config::load(None, env(&[("TUTTI_SERVER__LISTN", "x")]), &Overrides::default()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("listn") && text.contains("TUTTI_SERVER__LISTN"), "{text}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.toml");
        std::fs::write(&file, "[storage]\ndatadir = \"x\"\n").unwrap();
        assert!(
            Config::load(Some(&file), env(&[]), &Overrides::default()).unwrap_err().to_string().contains("datadir")
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("2d"), Some(Duration::from_secs(172_800)));
        assert_eq!(parse_duration("5 weeks"), None);
    }
}
