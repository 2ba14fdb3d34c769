//! Connectors: how Tutti's actions reach the tools marketers already use.
//!
//! A connector is a noun named after the service (`slack`, `trello`, `webhook`), one folder each: `config.rs`
//! (its table as written, and the checked config validating it gives), `mod.rs` (its operations, the build of
//! its sender from the checked config, the sender, its tests). [`ALL`] is the one list of them: flows are
//! compiled against it ([`infos`]), the configuration is checked against it ([`Registry::build`]), and the
//! dispatcher delivers through what it builds.
//!
//! The lifecycle, for every connector:
//! 1. **Validate** the `[connectors.<name>]` table without network I/O ([`Kind::validate`]): unknown keys,
//!    missing secrets (read from the environment variables the table names, never from the file itself) and
//!    malformed URLs are errors that name the key. What it returns is a typed [`CheckedConfig`].
//! 2. **Build** the [`Sender`] from it ([`CheckedConfig::build`]), which cannot fail: nothing is checked twice.
//!    HTTP connectors share [`http::Http`]: TLS with Mozilla's roots, the
//!    private-address guard (`allow_private`), a bound on answers, and one reading of statuses into delivered,
//!    worth retrying (with the vendor's `Retry-After`) or permanent.
//! 3. **Health-check** it the way a real send would go (the same client, credentials and host), with a call that
//!    has no effect a customer could see ([`Sender::health`]).
//! 4. **Send**: the dispatcher hands each action with its idempotency key, and counts it delivered only once
//!    the vendor confirmed.
//!
//! What the dispatcher applies around every connector (the same keys in every table, [`Settings`]): lanes
//! (concurrency), a rate limit, a timeout per attempt, the attempts before a dead letter, and the circuit
//! breaker.

pub mod ads;
pub mod ai;
pub mod asana;
pub mod audience;
pub mod decide;
pub mod http;
pub mod hubspot;
pub mod llm;
pub mod log;
pub mod phone;
pub mod slack;
pub mod sms;
pub mod smtp;
#[cfg(feature = "testing")]
pub mod testing;
mod topics;
pub mod trello;
pub mod webhook;
pub mod zalo;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
pub(crate) use topics::{Topics, numbered};
pub use tutti_core::secret::{Env, Secret};
use tutti_flows::{ConnectorInfo, OperationInfo};

/// One action, as a connector receives it.
#[derive(Debug, Clone, Copy)]
pub struct Action<'a> {
    /// Stable across every attempt and replay of this action (`<run>:<step>:<visit>`): passed to vendors that
    /// accept an idempotency key.
    pub key: &'a str,
    /// The profile the action is for (its id).
    pub profile: u64,
    pub flow: &'a str,
    pub step: &'a str,
    /// One of the connector's operations (checked when the flow was compiled, and again here).
    pub operation: &'a str,
    /// The flow's category (`promotional`, `transactional`, ...) and the channel policies counted it against.
    pub category: &'a str,
    pub channel: &'a str,
    /// The step's `with`, rendered.
    pub payload: &'a Value,
    /// Now, in Unix milliseconds, from the engine's clock (signatures, timestamps a vendor requires).
    pub now: i64,
    /// Opens and clicks may be tracked (the flow did not say `tracking: false`).
    pub tracking: bool,
}

impl<'a> Action<'a> {
    /// The action a flow dispatched, for the profile with id `profile`, at `now`.
    pub fn of(dispatch: &'a tutti_flows::Dispatch, profile: u64, now: i64) -> Action<'a> {
        Action {
            key: &dispatch.key,
            profile,
            flow: &dispatch.flow,
            step: &dispatch.step,
            operation: &dispatch.operation,
            category: &dispatch.category,
            channel: &dispatch.channel,
            payload: &dispatch.payload,
            now,
            tracking: dispatch.tracking,
        }
    }
}

/// Why an attempt did not deliver.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// Worth trying again: the network, a timeout, 408, 425, 429 or a 5xx. `retry_after`: how long the vendor
    /// asked to wait, when it said.
    Transient { error: String, retry_after: Option<Duration> },
    /// Trying again cannot help: another 4xx, a refused address, a payload the vendor's format rejects.
    Permanent(String),
}

impl Failure {
    pub fn transient(error: impl Into<String>) -> Failure {
        Failure::Transient { error: error.into(), retry_after: None }
    }

    pub fn permanent(error: impl Into<String>) -> Failure {
        Failure::Permanent(error.into())
    }

    pub fn message(&self) -> &str {
        match self {
            Failure::Transient { error, .. } | Failure::Permanent(error) => error,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// What a send or a health check comes to: the vendor's answer (kept as the action's result), or why not.
pub type Delivery<'a> = Pin<Box<dyn Future<Output = Result<Value, Failure>> + Send + 'a>>;

/// A built connector.
///
/// Contract: `send` returns `Ok` only once the vendor has confirmed the action; it never retries by itself (the
/// dispatcher does, with backoff, limits and the breaker) and never logs secrets. It may be called from many
/// lanes at once.
pub trait Sender: Send + Sync {
    fn send<'a>(&'a self, action: Action<'a>) -> Delivery<'a>;

    /// Exercises the real send path (client, credentials, host) with a call no customer sees.
    fn health(&self) -> Delivery<'_>;

    /// Called once, on the runtime that delivers, before the first action: background work (a batch
    /// flusher) starts here. Most connectors have none.
    fn start(self: Arc<Self>) {}
}

/// A configuration problem, naming the connector and the key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("[connectors.{connector}]: {message}")]
pub struct ConfigError {
    pub connector: String,
    pub message: String,
}

/// What building a connector may use besides its table.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub env: Env<'a>,
    /// The installation's key for links Tutti serves itself (one-click unsubscribe), 32 bytes.
    pub link_key: &'a [u8],
    /// State shared with the rest of the engine.
    pub shared: &'a Shared,
}

/// Durable key-value memory per connector (the engine keeps it in `connectors.db`): the task a topic already
/// has, the members an audience has waiting for the next batch. Calls are point reads and writes.
pub trait Memory: Send + Sync {
    fn get(&self, connector: &str, key: &str) -> Result<Option<String>, String>;
    fn put(&self, connector: &str, key: &str, value: &str) -> Result<(), String>;
    fn remove(&self, connector: &str, keys: &[String]) -> Result<(), String>;
    /// Entries whose key starts with `prefix` and sorts after `after`, in key order, at most `limit`.
    fn scan(&self, connector: &str, prefix: &str, after: &str, limit: usize) -> Result<Vec<(String, String)>, String>;
    /// Holds `key` for this process alone among all that share the memory (workers on one Postgres) until the
    /// answer is dropped; `None` while another holds it.
    fn try_hold(&self, connector: &str, key: &str) -> Result<Option<Box<dyn Send>>, String>;
}

/// [`Memory`] in a map, for tests and tools. Shared by several registries, it stands for a memory several
/// processes share: a key held through one is held for all.
#[derive(Default)]
pub struct MemoryMap(
    std::sync::Mutex<BTreeMap<(String, String), String>>,
    Arc<std::sync::Mutex<Vec<(String, String)>>>,
);

/// A key of a [`MemoryMap`] held; let go when dropped.
struct MapHolding(Arc<std::sync::Mutex<Vec<(String, String)>>>, (String, String));

impl Drop for MapHolding {
    fn drop(&mut self) {
        self.0.lock().expect("never poisoned").retain(|k| *k != self.1);
    }
}

impl Memory for MemoryMap {
    fn get(&self, connector: &str, key: &str) -> Result<Option<String>, String> {
        Ok(self.0.lock().expect("never poisoned").get(&(connector.to_owned(), key.to_owned())).cloned())
    }

    fn put(&self, connector: &str, key: &str, value: &str) -> Result<(), String> {
        self.0.lock().expect("never poisoned").insert((connector.to_owned(), key.to_owned()), value.to_owned());
        Ok(())
    }

    fn remove(&self, connector: &str, keys: &[String]) -> Result<(), String> {
        let mut map = self.0.lock().expect("never poisoned");
        for key in keys {
            map.remove(&(connector.to_owned(), key.clone()));
        }
        Ok(())
    }

    fn try_hold(&self, connector: &str, key: &str) -> Result<Option<Box<dyn Send>>, String> {
        let mut held = self.1.lock().expect("never poisoned");
        let name = (connector.to_owned(), key.to_owned());
        if held.contains(&name) {
            return Ok(None);
        }
        held.push(name.clone());
        Ok(Some(Box::new(MapHolding(self.1.clone(), name))))
    }

    fn scan(&self, connector: &str, prefix: &str, after: &str, limit: usize) -> Result<Vec<(String, String)>, String> {
        let map = self.0.lock().expect("never poisoned");
        Ok(map
            .iter()
            .filter(|((c, k), _)| c == connector && k.starts_with(prefix) && k.as_str() > after)
            .take(limit)
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect())
    }
}

/// What connectors share with the engine: their durable memory, and the website decisions the decision API
/// answers from.
pub struct Shared {
    pub memory: Arc<dyn Memory>,
    pub decisions: Arc<decide::Decisions>,
    /// Generation and review counts per flow (the `ai` connector's), for metrics.
    pub ai: Arc<tutti_ai::generate::Stats>,
    /// Where model calls are recorded (the append-only audit log).
    pub audit: Arc<dyn Audit>,
    /// A profile's recent events (the `ai` connector looks in them for an earlier complaint).
    pub history: Arc<dyn History>,
}

/// A profile's recent events as connectors see them: read only.
pub trait History: Send + Sync {
    /// Up to `limit` of the profile's events, newest first, as the JSON they arrived as. `profile` is the
    /// profile's id as text; an unknown one has none.
    fn recent(&self, profile: &str, limit: usize) -> Result<Vec<serde_json::Value>, String>;
}

/// No history: tools and dry runs, which hold no log.
pub struct NoHistory;

impl History for NoHistory {
    fn recent(&self, _: &str, _: usize) -> Result<Vec<serde_json::Value>, String> {
        Ok(Vec::new())
    }
}

/// The audit log as connectors see it: they append, nothing else.
pub trait Audit: Send + Sync {
    fn append(&self, records: Vec<tutti_core::audit::AuditRecord>) -> Result<(), String>;
}

/// [`Audit`] in memory, for tests and tools.
#[derive(Default)]
pub struct AuditMemory(std::sync::Mutex<Vec<tutti_core::audit::AuditRecord>>);

impl AuditMemory {
    pub fn records(&self) -> Vec<tutti_core::audit::AuditRecord> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Audit for AuditMemory {
    fn append(&self, mut records: Vec<tutti_core::audit::AuditRecord>) -> Result<(), String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).append(&mut records);
        Ok(())
    }
}

impl Shared {
    /// Memory in a map and no decisions: for tests and tools.
    pub fn in_memory() -> Shared {
        Shared {
            memory: Arc::new(MemoryMap::default()),
            decisions: Arc::new(decide::Decisions::default()),
            ai: Arc::default(),
            audit: Arc::new(AuditMemory::default()),
            history: Arc::new(NoHistory),
        }
    }
}

/// What the dispatcher applies around a connector. Every `[connectors.<name>]` table may set these keys; the
/// rest of the table is the connector's own.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Deliveries in flight at once (lanes). One profile's actions go through one lane, in order.
    pub concurrency: usize,
    /// Deliveries a lane may have made whose outcome is not yet recorded. A crash repeats at most
    /// `concurrency × unrecorded` deliveries (with the same idempotency key); 1 makes that the lanes alone,
    /// at the price of each lane waiting for every record.
    pub unrecorded: usize,
    /// Requests per second at most (a steady rate with `burst` allowed at once); unlimited when unset.
    pub rate_per_second: Option<f64>,
    pub burst: u32,
    /// How long one attempt may take.
    #[serde(deserialize_with = "duration")]
    pub timeout: Duration,
    /// Attempts before an action becomes a dead letter.
    pub max_attempts: u32,
    /// Consecutive failed attempts (network, timeout, 5xx) that open the circuit breaker: the connector is left
    /// alone for `breaker_cooldown`, then one attempt probes it.
    pub breaker_failures: u32,
    #[serde(deserialize_with = "duration")]
    pub breaker_cooldown: Duration,
    /// Hosts or IP addresses this connector may reach although they are private, loopback or link-local (such
    /// as `["127.0.0.1", "crm.internal"]`). Everything else private is refused: no server-side request forgery.
    pub allow_private: Vec<String>,
    /// Whether each delivered or dead action is recorded on its profile as an `Action Delivered` or
    /// `Action Failed` event (with the connector and the reason), for flows to react to.
    pub record_outcomes: bool,
    /// What one delivered action costs (`{amount, currency}`), per unit the connector bills (an SMS part for
    /// `sms`, else the action): charged to the flow's spend and checked against its budget.
    #[serde(deserialize_with = "price")]
    pub price: Option<tutti_core::money::Money>,
}

fn price<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<tutti_core::money::Money>, D::Error> {
    let value = Option::<Value>::deserialize(d)?;
    value
        .map(|v| {
            tutti_core::money::Money::from_value(&v).map_err(|e| serde::de::Error::custom(format!("`price`: {e}")))
        })
        .transpose()
}

/// The keys of [`Settings`], taken out of a connector's table before the rest goes to the connector.
const SETTINGS_KEYS: [&str; 11] = [
    "record_outcomes",
    "price",
    "concurrency",
    "unrecorded",
    "rate_per_second",
    "burst",
    "timeout",
    "max_attempts",
    "breaker_failures",
    "breaker_cooldown",
    "allow_private",
];

impl Default for Settings {
    fn default() -> Self {
        Settings {
            concurrency: 16,
            unrecorded: 1,
            rate_per_second: None,
            burst: 10,
            timeout: Duration::from_secs(10),
            max_attempts: 8,
            breaker_failures: 5,
            breaker_cooldown: Duration::from_secs(30),
            allow_private: Vec::new(),
            record_outcomes: true,
            price: None,
        }
    }
}

/// A duration as seconds (`30`) or text (`500ms`, `30s`, `5m`).
pub use tutti_core::time::deserialize_duration as duration;

/// Checks a connector's own table (the settings every connector takes already taken out), with where secrets
/// come from and the state shared with the engine.
pub type Validate = fn(&Value, &Context<'_>) -> Result<Box<dyn CheckedConfig>, String>;

/// A connector's configuration once validated: secrets read, addresses parsed, every key checked. Building the
/// sender from it adds only what runs (clients, caches, locks), and cannot fail.
pub trait CheckedConfig: Send {
    fn build(self: Box<Self>, settings: &Settings) -> Arc<dyn Sender>;
}

/// One operation a connector performs, and the members its actions' `with` may have.
pub struct Operation {
    pub name: &'static str,
    /// The members `with` may have, or `None` when it is open (a webhook's body, a log line). Checked when a flow
    /// is compiled, and again when sent, since a `with` given whole by a template is known only then.
    pub fields: Option<&'static [&'static str]>,
}

impl Operation {
    /// An operation whose `with` is open.
    pub const fn open(name: &'static str) -> Operation {
        Operation { name, fields: None }
    }

    /// An operation whose `with` may have only these members.
    pub const fn taking(name: &'static str, fields: &'static [&'static str]) -> Operation {
        Operation { name, fields: Some(fields) }
    }
}

/// One kind of connector in the registry.
pub struct Kind {
    pub name: &'static str,
    /// The channel frequency caps and quiet hours count its actions against, unless a step names one.
    pub channel: &'static str,
    pub operations: &'static [Operation],
    /// Whether it runs without a `[connectors.<name>]` table (`log` and `webhook` need no credentials).
    pub default_on: bool,
    /// How many units of its `price` an action costs (an SMS's parts); most connectors bill per action.
    pub units: fn(&Action<'_>) -> u64,
    /// Validates the connector's own keys (settings already taken out), without network I/O.
    pub validate: Validate,
}

/// One unit per action: what most connectors bill.
pub fn per_action(_: &Action<'_>) -> u64 {
    1
}

impl Kind {
    /// What delivering `action` costs at `price` (the price times the units the connector bills).
    pub fn cost(&self, action: &Action<'_>, price: &tutti_core::money::Money) -> tutti_core::money::Money {
        let units = (self.units)(action).max(1);
        tutti_core::money::Money::new(price.micros.saturating_mul(units as i64), &price.currency)
    }
}

/// Every connector. The one list: adding a connector means adding a module and a line here.
pub static ALL: &[&Kind] = &[
    &log::KIND,
    &webhook::KIND,
    &smtp::KIND,
    &sms::KIND,
    &zalo::KIND,
    &slack::KIND,
    &trello::KIND,
    &asana::KIND,
    &hubspot::KIND,
    &audience::KIND,
    &ads::KIND,
    &decide::KIND,
    &ai::KIND,
];

impl Kind {
    pub fn operation_names(&self) -> Vec<&'static str> {
        self.operations.iter().map(|o| o.name).collect()
    }

    /// Refuses what the action's operation is not, or a member of its `with` the operation does not take.
    pub fn check(&self, action: &Action<'_>) -> Result<(), Failure> {
        let Some(operation) = self.operations.iter().find(|o| o.name == action.operation) else {
            return Err(unknown_operation(self.name, action.operation));
        };
        let (Some(fields), Some(members)) = (operation.fields, action.payload.as_object()) else {
            return Ok(());
        };
        match members.keys().find(|k| !fields.contains(&k.as_str())) {
            Some(extra) => Err(Failure::permanent(format!(
                "`{}.{}` does not take `{extra}`; it takes {}",
                self.name,
                operation.name,
                fields.join(", ")
            ))),
            None => Ok(()),
        }
    }
}

/// Every connector as the flow compiler sees it (names, operations and their members, channels).
pub fn infos() -> Vec<ConnectorInfo> {
    ALL.iter()
        .map(|k| ConnectorInfo {
            name: k.name.into(),
            operations: k
                .operations
                .iter()
                .map(|o| OperationInfo {
                    name: o.name.into(),
                    fields: o.fields.map(|f| f.iter().map(|m| (*m).into()).collect()),
                })
                .collect(),
            channel: k.channel.into(),
        })
        .collect()
}

pub fn kind(name: &str) -> Option<&'static Kind> {
    ALL.iter().copied().find(|k| k.name == name)
}

/// A connector ready to deliver.
#[derive(Clone)]
pub struct Built {
    pub kind: &'static Kind,
    pub settings: Settings,
    pub sender: Arc<dyn Sender>,
}

impl fmt::Debug for Built {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Built").field("kind", &self.kind.name).field("settings", &self.settings).finish()
    }
}

/// The connectors this installation can deliver through: every configured one, and those that need no
/// configuration.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    pub connectors: BTreeMap<&'static str, Built>,
}

impl Registry {
    /// Validates `[connectors]` (connector name to its table) and builds every connector it enables, without
    /// I/O. Every problem is reported, each naming the connector and the key.
    pub fn build(tables: &BTreeMap<String, Value>, cx: &Context<'_>) -> Result<Registry, Vec<ConfigError>> {
        let mut errors = Vec::new();
        for name in tables.keys() {
            if kind(name).is_none() {
                let known: Vec<&str> = ALL.iter().map(|k| k.name).collect();
                errors.push(ConfigError {
                    connector: name.clone(),
                    message: format!("there is no connector named `{name}`; the connectors are {}", known.join(", ")),
                });
            }
        }
        let mut checked_configs = Vec::new();
        for kind in ALL.iter().copied() {
            let table = match tables.get(kind.name) {
                Some(table) => table.clone(),
                None if kind.default_on => Value::Object(Default::default()),
                None => continue,
            };
            let fail = |message: String| ConfigError { connector: kind.name.into(), message };
            let Value::Object(mut own) = table else {
                errors.push(fail("must be a table".into()));
                continue;
            };
            let mut common = serde_json::Map::new();
            for key in SETTINGS_KEYS {
                if let Some(v) = own.remove(key) {
                    common.insert(key.into(), v);
                }
            }
            let settings = match Settings::deserialize(Value::Object(common)) {
                Ok(s) => s,
                Err(e) => {
                    errors.push(fail(e.to_string()));
                    continue;
                }
            };
            if settings.concurrency == 0 || settings.max_attempts == 0 || settings.unrecorded == 0 {
                errors.push(fail("`concurrency`, `unrecorded` and `max_attempts` must be at least 1".into()));
                continue;
            }
            if settings.rate_per_second.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
                errors.push(fail("`rate_per_second` must be a positive number".into()));
                continue;
            }
            match (kind.validate)(&Value::Object(own), cx) {
                Ok(checked) => checked_configs.push((kind, settings, checked)),
                Err(message) => errors.push(fail(message)),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        // Every table is valid: only now is anything built.
        let connectors = checked_configs
            .into_iter()
            .map(|(kind, settings, checked)| {
                let sender = checked.build(&settings);
                (kind.name, Built { kind, settings, sender })
            })
            .collect();
        Ok(Registry { connectors })
    }

    pub fn get(&self, name: &str) -> Option<&Built> {
        self.connectors.get(name)
    }
}

/// Reads a connector's own table into its config type (whose unknown keys are errors).
pub(crate) fn config<T: serde::de::DeserializeOwned>(table: &Value) -> Result<T, String> {
    T::deserialize(table).map_err(|e| e.to_string())
}

/// A required string member of a payload.
pub(crate) fn text<'a>(payload: &'a Value, key: &str, operation: &str) -> Result<&'a str, Failure> {
    match payload.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            Err(Failure::permanent(format!("`{operation}` needs `{key}` in the step's `with`")))
        }
        Some(other) => Err(Failure::permanent(format!("`{key}` must be text, not {}", kind_of(other)))),
    }
}

/// An optional string member of a payload (absent, null and empty are all "not given").
pub(crate) fn optional_text<'a>(payload: &'a Value, key: &str) -> Result<Option<&'a str>, Failure> {
    match payload.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(Failure::permanent(format!("`{key}` must be text, not {}", kind_of(other)))),
    }
}

pub(crate) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The operation was not one of the connector's (a flow compiled against another build).
pub(crate) fn unknown_operation(connector: &str, operation: &str) -> Failure {
    let ops = kind(connector).map(|k| k.operation_names().join(", ")).unwrap_or_default();
    Failure::permanent(format!("`{connector}` has no operation `{operation}`; it has {ops}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tables(v: Value) -> BTreeMap<String, Value> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn defaults_need_no_configuration_and_credentials_come_from_the_environment() {
        let none = |_: &str| None;
        let shared = Shared::in_memory();
        let registry =
            Registry::build(&BTreeMap::new(), &Context { env: &none, link_key: &[7; 32], shared: &shared }).unwrap();
        assert_eq!(registry.connectors.keys().copied().collect::<Vec<_>>(), ["ai", "decide", "log", "webhook"]);
        let env = |name: &str| (name == "SLACK_TOKEN").then(|| "xoxb-secret-value".to_owned());
        let registry = Registry::build(
            &tables(json!({"slack": {"token_env": "SLACK_TOKEN", "concurrency": 2, "timeout": "2s"}})),
            &Context { env: &env, link_key: &[7; 32], shared: &shared },
        )
        .unwrap();
        let slack = registry.get("slack").unwrap();
        assert_eq!((slack.settings.concurrency, slack.settings.timeout), (2, Duration::from_secs(2)));
        assert!(!format!("{registry:?}").contains("xoxb-secret-value"), "secrets never in debug output");
    }

    #[test]
    fn every_problem_is_named() {
        let none = |_: &str| None;
        let errors = Registry::build(
            &tables(json!({
                "slak": {},
                "slack": {"token_env": "NOPE"},
                "webhook": {"timout": "1s"},
                "trello": {"key_env": "K", "token_env": "T", "concurrency": 0},
            })),
            &Context { env: &none, link_key: &[7; 32], shared: &Shared::in_memory() },
        )
        .unwrap_err();
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        let all = text.join("\n");
        assert!(all.contains("[connectors.slak]: there is no connector named `slak`"), "{all}");
        assert!(all.contains("[connectors.slack]") && all.contains("NOPE") && all.contains("not set"), "{all}");
        assert!(all.contains("[connectors.webhook]") && all.contains("timout"), "{all}");
        assert!(all.contains("[connectors.trello]") && all.contains("concurrency"), "{all}");
        assert_eq!(errors.len(), 4, "{all}");
    }

    #[test]
    fn the_flow_compiler_sees_every_connector() {
        let infos = infos();
        let names: Vec<&str> = infos.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "log", "webhook", "smtp", "sms", "zalo", "slack", "trello", "asana", "hubspot", "audience", "ads",
                "decide", "ai"
            ]
        );
        assert!(infos.iter().all(|i| !i.operations.is_empty() && !i.channel.is_empty()));
    }
}
