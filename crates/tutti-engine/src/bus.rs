//! `[bus]`: where the event log lives. Without `nats` it is SQLite in the data directory (the embedded
//! default); with `nats = "nats://..."` it is a JetStream stream (`tutti_log::jetstream_log`), which several
//! Tutti processes can share.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize, Serializer};
use tutti_log::jetstream_log::{self, JetStreamLog, JetStreamReader, Link, StreamLayout};
use tutti_store::sqlite::{Checkpointer, SqliteEventLog, SqliteEventReader};
use tutti_store::{EventLog, EventReader};

use crate::EngineError;

#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BusConfig {
    /// `nats://[user:password@]host:port`, several separated by commas (the servers of one cluster). Unset:
    /// the log is SQLite in the data directory.
    #[serde(serialize_with = "redacted_url")]
    pub nats: Option<String>,
    /// The JetStream stream that holds the log.
    pub stream: String,
    /// The log's subjects are `<subject_prefix>.<partition>`.
    pub subject_prefix: String,
    /// Fixed when the stream is made: Tutti refuses to start on a stream made with another count.
    pub partitions: u32,
    /// Copies JetStream keeps of each event: 1 for one NATS server, 3 for a cluster of three or more.
    pub replicas: u32,
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig {
            nats: None,
            stream: "TUTTI".into(),
            subject_prefix: "tutti.events".into(),
            partitions: 16,
            replicas: 1,
        }
    }
}

/// Never the URL itself: it may carry a password.
impl std::fmt::Debug for BusConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BusConfig")
            .field("nats", &self.nats.as_ref().map(|_| "<set>"))
            .field("stream", &self.stream)
            .field("subject_prefix", &self.subject_prefix)
            .field("partitions", &self.partitions)
            .field("replicas", &self.replicas)
            .finish()
    }
}

/// The servers' addresses without their credentials.
fn redacted_url<S: Serializer>(url: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match url.as_deref().map(|u| tutti_log::nats::Options::parse(u, "")) {
        None => s.serialize_none(),
        Some(Ok(options)) => {
            let shown: Vec<String> =
                options.servers.iter().map(|server| format!("nats://{}", server.address())).collect();
            s.serialize_some(&shown.join(","))
        }
        Some(Err(_)) => s.serialize_some("<not a NATS URL>"),
    }
}

impl BusConfig {
    /// The problems with these settings, each naming its key.
    pub fn check(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if let Some(url) = &self.nats
            && let Err(e) = tutti_log::nats::Options::parse(url, "tutti")
        {
            problems.push(format!("bus.nats: {e}"));
        }
        let name_ok = |s: &str| {
            !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if !name_ok(&self.stream) {
            problems.push(format!("bus.stream: {:?} is not a stream name (letters, digits, - and _)", self.stream));
        }
        let prefix_ok = self.subject_prefix.split('.').all(name_ok) && !self.subject_prefix.starts_with('$');
        if !prefix_ok {
            problems.push(format!(
                "bus.subject_prefix: {:?} is not a subject prefix (tokens of letters, digits, - and _ joined by dots)",
                self.subject_prefix
            ));
        }
        if !(1..=4096).contains(&self.partitions) {
            problems.push(format!("bus.partitions: {} is not between 1 and 4096", self.partitions));
        }
        if !(1..=5).contains(&self.replicas) {
            problems.push(format!("bus.replicas: {} is not between 1 and 5", self.replicas));
        }
        if problems.is_empty() { Ok(()) } else { Err(problems.join("\n")) }
    }

    pub fn layout(&self) -> StreamLayout {
        StreamLayout {
            stream: self.stream.clone(),
            prefix: self.subject_prefix.clone(),
            partitions: self.partitions,
            replicas: self.replicas,
        }
    }
}

/// Refuses a role that cannot work with this configuration: an intake or a worker shares its log with other
/// processes, so it needs `[bus] nats`; an intake must take the write key the others take, so it needs it set.
pub(crate) fn check_role(config: &crate::Config) -> Result<(), EngineError> {
    use crate::config::Role;
    let role = config.server.role;
    if role != Role::All && config.bus.nats.is_none() {
        return Err(EngineError::Start(format!(
            "--role {} needs [bus] nats: the processes share their event log on NATS JetStream (docs/scale.md)",
            if role == Role::Intake { "intake" } else { "worker" }
        )));
    }
    if role == Role::Intake && config.auth.write_key.is_none() {
        return Err(EngineError::Start(
            "--role intake needs the write key the other processes take: set TUTTI_WRITE_KEY or [auth] write_key"
                .into(),
        ));
    }
    Ok(())
}

/// The event log opened: its writer for the intake, a reader for everyone else, and the SQLite log's
/// checkpointer (a JetStream log has none).
pub(crate) struct OpenedLog {
    pub writer: Box<dyn EventLog>,
    pub reader: Arc<dyn EventReader>,
    pub checkpointer: Option<Checkpointer>,
    /// The connection and layout of a log on JetStream, which other processes may append to too.
    pub shared: Option<(Arc<Link>, StreamLayout)>,
}

impl OpenedLog {
    /// The feed the intake publishes its durable heads to: `local`, and on JetStream an announcement to the
    /// other processes as well.
    pub fn intake_feed(&self, local: Arc<tutti_log::LocalFeed>) -> Arc<dyn tutti_log::LogFeed> {
        match &self.shared {
            Some((link, layout)) => Arc::new(jetstream_log::AnnouncingFeed::new(local, link.clone(), layout)),
            None => local,
        }
    }

    /// On JetStream, a thread that keeps `local` at the head other processes' appends reach.
    pub fn watch(&self, local: Arc<tutti_log::LocalFeed>) -> std::io::Result<Option<std::thread::JoinHandle<()>>> {
        match &self.shared {
            Some((link, layout)) => Ok(Some(jetstream_log::watch_head(link.clone(), layout.clone(), local)?)),
            None => Ok(None),
        }
    }
}

/// Opens the log `[bus]` names: SQLite at `events_path`, or the JetStream stream (made if missing, checked if
/// there), with `dedup_window` as its duplicate window.
pub(crate) fn open_log(
    config: &BusConfig,
    events_path: &std::path::Path,
    dedup_window: Duration,
) -> Result<OpenedLog, EngineError> {
    config.check().map_err(EngineError::Start)?;
    let Some(url) = &config.nats else {
        let writer = SqliteEventLog::open(events_path)?;
        let checkpointer = writer.checkpointer()?;
        return Ok(OpenedLog {
            writer: Box::new(writer),
            reader: Arc::new(SqliteEventReader::open(events_path)?),
            checkpointer: Some(checkpointer),
            shared: None,
        });
    };
    let options = tutti_log::nats::Options::parse(url, "tutti").map_err(EngineError::Start)?;
    let link = Arc::new(Link::connect(options)?);
    let layout = config.layout();
    jetstream_log::setup(&link, &layout, dedup_window)?;
    tracing::info!(stream = %layout.stream, partitions = layout.partitions, "the event log is on NATS JetStream");
    Ok(OpenedLog {
        writer: Box::new(JetStreamLog::new(link.clone(), layout.clone())),
        reader: Arc::new(JetStreamReader::new(link.clone(), layout.clone())),
        checkpointer: None,
        shared: Some((link, layout)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked_and_shown_without_credentials() {
        let mut config = BusConfig {
            nats: Some("nats://tutti:s3cret@nats-1:4222,nats://t0ken@nats-2".into()),
            ..BusConfig::default()
        };
        config.check().unwrap();
        let shown = toml::to_string(&config).unwrap();
        assert!(shown.contains("nats = \"nats://nats-1:4222,nats://nats-2:4222\""), "{shown}");
        assert!(!shown.contains("s3cret") && !shown.contains("t0ken") && !format!("{config:?}").contains("s3cret"));
        config.partitions = 0;
        config.replicas = 9;
        config.stream = "TUTTI.X".into();
        config.subject_prefix = "tutti.>".into();
        config.nats = Some("http://x".into());
        let problems = config.check().unwrap_err();
        for key in ["bus.nats", "bus.stream", "bus.subject_prefix", "bus.partitions", "bus.replicas"] {
            assert!(problems.contains(key), "{key} in {problems}");
        }
    }
}
