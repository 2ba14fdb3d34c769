//! Configuration: one typed tree. Defaults, then `tutti.toml`, then `TUTTI_SECTION__KEY` environment
//! variables, then command-line flags. Unknown keys are errors that name the key.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize, Serializer};
use tutti_profiles::IdentityConfig;

/// Configuration errors, each naming the file, variable or key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
}

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    /// Where the event log lives: SQLite in the data directory, or a NATS JetStream stream.
    pub bus: crate::bus::BusConfig,
    pub auth: AuthConfig,
    pub intake: IntakeConfig,
    pub identity: IdentitySection,
    pub log: LogConfig,
    pub flows: FlowsConfig,
    pub processor: ProcessorConfig,
    /// `[connectors.<name>]`: each connector's table, validated by `tutti_connectors::Registry::build` (which
    /// names the connector and the key of every problem).
    #[serde(serialize_with = "redacted_connectors")]
    pub connectors: BTreeMap<String, toml::Value>,
    pub hooks: HooksConfig,
    pub insights: InsightsConfig,
    pub analytics: AnalyticsConfig,
    /// When a topic mined from conversations is counted to flows (`Conversation Topic Counted`) and when it has
    /// risen (`Conversation Topic Rose`): `task_threshold`, `rise_factor`, `rise_minimum`; and how a provider's
    /// embeddings group sentences: `embedding_threshold`, `embedding_texts`.
    pub conversations: tutti_conversations::settings::Settings,
}

/// Reports and questions over Tutti's own events.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalyticsConfig {
    /// A metrics file of one's own (YAML), laid over the shipped measures and dimensions (`tutti analytics
    /// metrics` prints them).
    pub metrics: Option<PathBuf>,
    /// The most rows one question's query returns.
    pub max_rows: usize,
    /// A question's query is stopped after this long.
    #[serde(deserialize_with = "duration", serialize_with = "show_duration")]
    pub query_timeout: Duration,
    /// The time zone questions are read in when they do not say one (IANA name, such as `Asia/Ho_Chi_Minh`).
    pub time_zone: String,
}

impl Default for AnalyticsConfig {
    fn default() -> Self {
        AnalyticsConfig {
            metrics: None,
            max_rows: 1000,
            query_timeout: Duration::from_secs(5),
            time_zone: "UTC".into(),
        }
    }
}

/// Creative intelligence.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct InsightsConfig {
    /// A taxonomy file (JSON; `tutti insights taxonomy` prints the default to start from). Default: tone,
    /// purpose, structure and offer framing.
    pub taxonomy: Option<PathBuf>,
    /// Labelled creatives (JSON lines) to train on besides the shipped ones, for traits of one's own.
    pub examples: Option<PathBuf>,
}

/// Inbound webhooks.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HooksConfig {
    /// Directory of hook files (YAML, one per source, served at `POST /hooks/{source}`; default: `hooks/` in the
    /// data directory, when present).
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowsConfig {
    /// Directory of flow, segment and policy YAML files loaded at start (default: `./flows` when present).
    pub dir: Option<PathBuf>,
}

/// The processor's health, as `/healthz` reports it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProcessorConfig {
    /// `/healthz` answers 503 when the processor is further behind the durable log than this many events.
    pub max_lag: u64,
    /// `/healthz` answers 503 when the processor has not come round its loop for this long (it does at least
    /// every 20 ms when idle; one batch of 10,000 events takes well under a second).
    #[serde(deserialize_with = "duration", serialize_with = "show_duration")]
    pub stall_after: Duration,
}

impl Default for ProcessorConfig {
    fn default() -> Self {
        ProcessorConfig { max_lag: 1_000_000, stall_after: Duration::from_secs(30) }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address of the HTTP server.
    pub listen: SocketAddr,
    /// A client must send a request's headers within this, or the connection is closed (slowloris).
    #[serde(deserialize_with = "duration", serialize_with = "show_duration")]
    pub header_read_timeout: Duration,
    /// A client must send a request's body within this, or gets 408.
    #[serde(deserialize_with = "duration", serialize_with = "show_duration")]
    pub body_read_timeout: Duration,
    /// Web origins whose pages may call the tracking API (`/v1/*`) from a browser (CORS): exact origins such
    /// as `https://shop.example.vn`, or `*` for any, as Segment allows by default.
    pub tracking_origins: Vec<String>,
    /// Web origins whose pages may call `GET /api/v1/decide` with the write key from a browser.
    pub decide_origins: Vec<String>,
    /// What this process does: `all` (the default), `intake` or `worker` (`docs/scale.md`).
    pub role: Role,
}

/// What one `tutti serve` process does when several share a log on NATS JetStream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything: the tracking API, processing, deliveries, the admin API and the console.
    #[default]
    All,
    /// Only the tracking API (`/v1/*`), `/healthz` and `/metrics`: validates events and appends them to the
    /// shared log. It keeps no state.
    Intake,
    /// Everything but the tracking API: processing, deliveries, hooks, the admin API and the console.
    Worker,
}

impl Role {
    /// Whether the process folds events into profiles and delivers actions.
    pub fn processes(self) -> bool {
        self != Role::Intake
    }

    /// Whether the process serves the tracking API.
    pub fn takes_events(self) -> bool {
        self != Role::Worker
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(text: &str) -> Result<Role, String> {
        match text {
            "all" => Ok(Role::All),
            "intake" => Ok(Role::Intake),
            "worker" => Ok(Role::Worker),
            _ => Err(format!("{text:?} is not a role: all, intake or worker")),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8910)),
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            tracking_origins: vec!["*".into()],
            decide_origins: vec!["*".into()],
            role: Role::All,
        }
    }
}

#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Where the embedded databases and generated secrets live.
    pub data_dir: PathBuf,
    /// A Postgres connection string (`postgres://user@host:5432/db`, or `host=... dbname=...`) for profiles,
    /// flows and the outbox; unset, they are SQLite in the data directory (`docs/scale.md`).
    #[serde(serialize_with = "described_postgres")]
    pub postgres: Option<String>,
    /// With Postgres and `[bus] nats`, how long a worker keeps its partitions of the log without renewing
    /// them; it renews every third of this. A worker that stops loses its partitions to the others within
    /// about this plus a third (`docs/scale.md`).
    #[serde(deserialize_with = "duration", serialize_with = "show_duration")]
    pub lease: Duration,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig { data_dir: PathBuf::from("./tutti-data"), postgres: None, lease: Duration::from_secs(6) }
    }
}

/// Never the connection string itself: it may carry a password.
impl fmt::Debug for StorageConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StorageConfig")
            .field("data_dir", &self.data_dir)
            .field("postgres", &self.postgres.as_deref().map(tutti_store::postgres::describe))
            .finish()
    }
}

/// Where the database is, never its password.
fn described_postgres<S: Serializer>(url: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match url {
        Some(url) => s.serialize_some(&tutti_store::postgres::describe(url)),
        None => s.serialize_none(),
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
    /// The key of the keyed hash that turns erased identifiers into tombstones (64 hex digits). Workers that
    /// share a database must share it (`docs/scale.md`); one Tutti alone generates its own.
    pub erasure_key: Option<String>,
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |s: &Option<String>| if s.is_some() { "<redacted>" } else { "<unset>" };
        f.debug_struct("AuthConfig")
            .field("write_key", &shown(&self.write_key))
            .field("admin_token", &shown(&self.admin_token))
            .field("erasure_key", &shown(&self.erasure_key))
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct IntakeConfig {
    /// How long a `messageId` is remembered for deduplication, such as `"24h"` or `"7d"`.
    #[serde(deserialize_with = "duration", serialize_with = "show_duration")]
    pub dedup_retention: Duration,
    /// The most events written in one group commit.
    pub max_commit_events: usize,
}

impl Default for IntakeConfig {
    fn default() -> Self {
        IntakeConfig { dedup_retention: Duration::from_secs(24 * 3600), max_commit_events: 20_000 }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
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

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `error`, `warn`, `info`, `debug` or `trace`.
    pub level: String,
    /// How often a line at info counts each connector's deliveries (delivered, retried, dead, ...), when any
    /// happened; `0` for never.
    #[serde(deserialize_with = "duration", serialize_with = "show_duration")]
    pub delivery_summary: Duration,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { level: "info".into(), delivery_summary: Duration::from_secs(60) }
    }
}

/// Parses `90s`, `15m`, `24h`, `7d` or a plain number of seconds.
use tutti_core::time::deserialize_duration as duration;

/// Writes a duration as it is read back (`90s`, `24h`).
fn show_duration<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&tutti_core::time::format_duration(d.as_millis() as i64))
}

/// Shown instead of a secret's value.
const REDACTED: &str = "<redacted>";

impl Serialize for AuthConfig {
    /// Whether each secret is configured, never its value.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut out = s.serialize_struct("AuthConfig", 3)?;
        let secrets =
            [("write_key", &self.write_key), ("admin_token", &self.admin_token), ("erasure_key", &self.erasure_key)];
        for (name, value) in secrets {
            if value.is_some() {
                out.serialize_field(name, REDACTED)?;
            } else {
                out.skip_field(name)?;
            }
        }
        out.end()
    }
}

/// Serialises connector tables with every value that may be a secret redacted: keys naming a token, secret,
/// password or key (but not `*_env`, which names an environment variable, not its value).
fn redacted_connectors<S: Serializer>(tables: &BTreeMap<String, toml::Value>, s: S) -> Result<S::Ok, S::Error> {
    fn redact(value: &toml::Value) -> toml::Value {
        match value {
            toml::Value::Table(t) => toml::Value::Table(
                t.iter()
                    .map(|(k, v)| {
                        let lower = k.to_ascii_lowercase();
                        let secret =
                            ["token", "secret", "password", "key", "credential"].iter().any(|w| lower.contains(w))
                                && !lower.ends_with("_env");
                        let shown =
                            if secret && !v.is_table() { toml::Value::String(REDACTED.into()) } else { redact(v) };
                        (k.clone(), shown)
                    })
                    .collect(),
            ),
            toml::Value::Array(a) => toml::Value::Array(a.iter().map(redact).collect()),
            other => other.clone(),
        }
    }
    let shown: BTreeMap<&String, toml::Value> = tables.iter().map(|(k, v)| (k, redact(v))).collect();
    shown.serialize(s)
}

#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub role: Option<Role>,
    pub data_dir: Option<PathBuf>,
    pub flows_dir: Option<PathBuf>,
}

impl Config {
    /// Loads the configuration.
    ///
    /// `file`: an explicit config file (must exist), or `None` to read `./tutti.toml` when it exists.
    /// `env`: the environment, as `(name, value)` pairs; `TUTTI_SECTION__KEY` sets `section.key` (and
    /// `TUTTI_CONNECTORS__SLACK__TIMEOUT` sets `connectors.slack.timeout`), and
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
                _ => {
                    let parts: Vec<String> = name["TUTTI_".len()..].split("__").map(str::to_lowercase).collect();
                    if parts.len() < 2 || parts.iter().any(String::is_empty) {
                        continue;
                    }
                    parts
                }
            };
            env_names.push(name.clone());
            let (key, sections) = path.split_last().expect("at least two parts");
            let mut at = &mut table;
            for (depth, section) in sections.iter().enumerate() {
                at = at
                    .entry(section.clone())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                    .as_table_mut()
                    .ok_or_else(|| ConfigError::Invalid {
                        origin: name.clone(),
                        message: format!("{} is not a section", sections[..=depth].join(".")),
                    })?;
            }
            at.insert(key.clone(), env_value(value));
        }
        let mut config = Config::deserialize(toml::Value::Table(table)).map_err(|e| {
            let origin =
                if env_names.is_empty() { origin.clone() } else { format!("{origin} with {}", env_names.join(", ")) };
            ConfigError::Invalid { origin, message: e.to_string().trim().replace('\n', " ") }
        })?;
        if let Some(role) = overrides.role {
            config.server.role = role;
        }
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
    fn shown_as_toml_that_reads_back_with_every_secret_redacted() {
        let c = Config::load(
            None,
            env(&[
                ("TUTTI_AUTH__WRITE_KEY", "wk-very-secret"),
                ("TUTTI_INTAKE__DEDUP_RETENTION", "90s"),
                ("TUTTI_CONNECTORS__SLACK__TOKEN", "xoxb-very-secret"),
                ("TUTTI_CONNECTORS__SLACK__TOKEN_ENV", "SLACK_TOKEN"),
                ("TUTTI_CONNECTORS__SMTP__PASSWORD", "pw-very-secret"),
                ("TUTTI_CONNECTORS__SMTP__HOST", "mail.example.vn"),
            ]),
            &Overrides::default(),
        )
        .unwrap();
        let text = toml::to_string(&c).unwrap();
        assert!(!text.contains("very-secret"), "{text}");
        let back: toml::Table = text.parse().unwrap();
        assert_eq!(back["auth"]["write_key"].as_str(), Some(REDACTED));
        assert!(back["auth"].get("admin_token").is_none(), "unset secrets are left out");
        assert_eq!(back["connectors"]["slack"]["token"].as_str(), Some(REDACTED));
        assert_eq!(back["connectors"]["slack"]["token_env"].as_str(), Some("SLACK_TOKEN"), "names a variable");
        assert_eq!(back["connectors"]["smtp"]["host"].as_str(), Some("mail.example.vn"));
        assert_eq!(back["intake"]["dedup_retention"].as_str(), Some("1m30s"));
        // Everything but the redacted secrets reads back as the same configuration.
        let mut plain = back.clone();
        plain.remove("auth");
        plain.remove("connectors");
        let again = Config::deserialize(toml::Value::Table(plain)).unwrap();
        assert_eq!(again.intake.dedup_retention, Duration::from_secs(90));
        assert_eq!(again.server.listen, c.server.listen);
    }

    #[test]
    fn durations_in_seconds_or_text() {
        let c = Config::load(None, env(&[("TUTTI_INTAKE__DEDUP_RETENTION", "90s")]), &Overrides::default()).unwrap();
        assert_eq!(c.intake.dedup_retention, Duration::from_secs(90));
        let c = Config::load(None, env(&[("TUTTI_INTAKE__DEDUP_RETENTION", "3600")]), &Overrides::default()).unwrap();
        assert_eq!(c.intake.dedup_retention, Duration::from_secs(3600));
        let err = Config::load(None, env(&[("TUTTI_INTAKE__DEDUP_RETENTION", "5 weeks")]), &Overrides::default());
        assert!(err.unwrap_err().to_string().contains("5 weeks"));
    }

    #[test]
    fn connector_tables_take_three_level_variables() {
        let c = Config::load(
            None,
            env(&[
                ("TUTTI_CONNECTORS__SLACK__TOKEN_ENV", "SLACK_TOKEN"),
                ("TUTTI_CONNECTORS__SLACK__CONCURRENCY", "4"),
            ]),
            &Overrides::default(),
        )
        .unwrap();
        let slack = c.connectors["slack"].as_table().unwrap();
        assert_eq!(slack["token_env"].as_str(), Some("SLACK_TOKEN"));
        assert_eq!(slack["concurrency"].as_integer(), Some(4));
    }
}
