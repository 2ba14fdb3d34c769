//! The event log on a NATS JetStream stream: the same [`EventLog`] and [`EventReader`] as the SQLite log, so
//! the intake and the processor do not know which one they use.
//!
//! - **Layout.** One stream (`TUTTI` by default) on the subjects `<prefix>.<partition>`. An event's partition
//!   is its routing key's ([`NewEvent::routing_key`]) under the [`HashPartitioner`] of the partition count
//!   fixed when the stream was made (kept in the stream's metadata; a different count is refused at start).
//!   The stream's sequence number is the event's `seq`: one order over all partitions, each partition's events
//!   in order within it.
//! - **Acknowledged means durable.** A group of events is published as atomic batches of up to 1,000: each
//!   batch is stored whole or not at all, and [`EventLog::append`] returns only after JetStream acknowledged
//!   every batch. With `sync_interval: always` in the server's configuration JetStream writes each batch to
//!   disk before acknowledging it (one sync per batch); `docs/scale.md` says why that setting is required.
//! - **Deduplication** is JetStream's: a client's `messageId` is sent as `Nats-Msg-Id` (its SHA-256),
//!   remembered for the stream's duplicate window (the intake's `dedup_retention`). A batch holding an id
//!   already stored is refused whole; it is then published message by message, and the repeats come back as
//!   duplicates.
//! - **Erasure** deletes the person's messages with their bytes overwritten (`no_erase: false`).
//! - **Connections** are made again after a failure, at the next call; a call that failed acknowledged
//!   nothing (the intake answers 503 and clients retry).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tutti_store::{Appended, EventLog, EventReader, LogSyncer, NewEvent, StoreError, StoredEvent};

use crate::nats::jetstream::{ATOMIC_BATCH_MAX, BATCH_DUPLICATE, Publish, StoredMessage};
use crate::nats::{JetStream, NatsError, Options};
use crate::{HashPartitioner, LogFeed, Partitioner};

/// The header that carries an event's server receive time (milliseconds since the epoch).
const RECEIVED_AT: &str = "Tutti-Received-At";

/// The stream metadata key that records the partition count.
const PARTITIONS_KEY: &str = "tutti_partitions";

/// Where the log lives in JetStream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamLayout {
    pub stream: String,
    /// Subjects are `<prefix>.<partition>`.
    pub prefix: String,
    pub partitions: u32,
    /// Copies JetStream keeps of each message (1, or 3 in a cluster of three or more servers).
    pub replicas: u32,
}

impl StreamLayout {
    /// The subject of one partition.
    pub fn subject(&self, partition: u32) -> String {
        format!("{}.{partition}", self.prefix)
    }

    /// The subject filter of every partition.
    pub fn all(&self) -> String {
        format!("{}.>", self.prefix)
    }

    /// The partition a subject of this layout names (`None` for any other subject).
    pub fn partition_of_subject(&self, subject: &str) -> Option<u32> {
        let partition = subject.strip_prefix(self.prefix.as_str())?.strip_prefix('.')?;
        partition.parse().ok().filter(|p| *p < self.partitions)
    }
}

fn bus(e: NatsError) -> StoreError {
    StoreError::Bus(e.to_string())
}

/// A JetStream context that connects again, at the next call, after its connection was lost. Shared by every
/// thread that reads or writes the log (the connection answers calls from several threads at once).
pub struct Link {
    options: Options,
    current: Mutex<Option<Arc<JetStream>>>,
}

impl Link {
    /// Connects now, so a wrong address or a server without JetStream stops the start.
    pub fn connect(options: Options) -> Result<Link, StoreError> {
        let js = JetStream::connect(&options).map_err(bus)?;
        Ok(Link { options, current: Mutex::new(Some(Arc::new(js))) })
    }

    /// The live context, connecting again if the last one was lost.
    pub fn get(&self) -> Result<Arc<JetStream>, StoreError> {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(js) = current.as_ref()
            && js.connection().closed().is_none()
        {
            return Ok(js.clone());
        }
        *current = None;
        let js = Arc::new(JetStream::connect(&self.options).map_err(bus)?);
        *current = Some(js.clone());
        Ok(js)
    }
}

/// Makes the log's stream, or checks the one there: its subjects, and the partition count it was made with.
/// Sets the duplicate window to `dedup_window` when it differs.
pub fn setup(link: &Link, layout: &StreamLayout, dedup_window: Duration) -> Result<(), StoreError> {
    let js = link.get()?;
    let window = dedup_window.as_nanos().min(i64::MAX as u128) as i64;
    let wanted = json!({
        "name": layout.stream,
        "subjects": [layout.all()],
        "retention": "limits",
        "storage": "file",
        "discard": "old",
        "max_msgs": -1, "max_bytes": -1, "max_age": 0, "max_msgs_per_subject": -1, "max_msg_size": -1,
        "num_replicas": layout.replicas,
        "duplicate_window": window,
        "allow_direct": true,
        "allow_atomic": true,
        "metadata": { PARTITIONS_KEY: layout.partitions.to_string() },
    });
    let Some(info) = js.stream_info(&layout.stream).map_err(bus)? else {
        js.create_stream(&wanted).map_err(bus)?;
        tracing::info!(stream = %layout.stream, partitions = layout.partitions, "made the event log's stream");
        return Ok(());
    };
    let config = &info.config;
    if config["subjects"] != json!([layout.all()]) {
        return Err(StoreError::Bus(format!(
            "the stream {} takes the subjects {}, not {}: it is not this log's",
            layout.stream,
            config["subjects"],
            layout.all()
        )));
    }
    let made_with = config["metadata"][PARTITIONS_KEY].as_str().unwrap_or("none");
    if made_with != layout.partitions.to_string() {
        return Err(StoreError::Bus(format!(
            "the stream {} was set up with {made_with} partitions, not {}: the count is fixed, and changing it \
             means moving the log to a new stream",
            layout.stream, layout.partitions
        )));
    }
    if config["duplicate_window"].as_i64() != Some(window) || config["allow_atomic"] != json!(true) {
        let mut changed = config.clone();
        changed["duplicate_window"] = window.into();
        changed["allow_atomic"] = true.into();
        js.update_stream(&changed).map_err(bus)?;
    }
    Ok(())
}

/// The log's write side on JetStream.
pub struct JetStreamLog {
    link: Arc<Link>,
    layout: StreamLayout,
    partitioner: HashPartitioner,
}

impl JetStreamLog {
    pub fn new(link: Arc<Link>, layout: StreamLayout) -> JetStreamLog {
        let partitioner = HashPartitioner::new(layout.partitions);
        JetStreamLog { link, layout, partitioner }
    }

    /// Publishes one batch message by message (after it was refused for holding a known id): the repeats come
    /// back as duplicates.
    fn one_by_one(js: &JetStream, batch: &[Publish<'_>]) -> Result<Vec<Appended>, StoreError> {
        let acks = js.publish_all(batch).map_err(bus)?;
        acks.into_iter()
            .map(|ack| {
                let ack = ack.map_err(bus)?;
                Ok(if ack.duplicate { Appended::Duplicate } else { Appended::Stored(ack.seq) })
            })
            .collect()
    }
}

impl EventLog for JetStreamLog {
    fn append(&mut self, events: &[NewEvent]) -> Result<Vec<Appended>, StoreError> {
        let js = self.link.get()?;
        let mut outcomes: Vec<Option<Appended>> = vec![None; events.len()];
        // A second copy within the call is a duplicate of the first, as in the SQLite log; JetStream would
        // refuse the whole batch for it.
        let mut seen = HashSet::new();
        let mut sent = Vec::with_capacity(events.len());
        for (i, event) in events.iter().enumerate() {
            if event.client_message_id && !seen.insert(event.message_id.as_str()) {
                outcomes[i] = Some(Appended::Duplicate);
            } else {
                sent.push(i);
            }
        }
        let subjects: Vec<String> = sent
            .iter()
            .map(|&i| self.layout.subject(self.partitioner.partition_of(events[i].routing_key.as_bytes())))
            .collect();
        let received: Vec<String> = sent.iter().map(|&i| events[i].received_at.to_string()).collect();
        let ids: Vec<Option<String>> =
            sent.iter().map(|&i| events[i].client_message_id.then(|| dedup_id(&events[i].message_id))).collect();
        let headers: Vec<[(&str, &str); 1]> = received.iter().map(|r| [(RECEIVED_AT, r.as_str())]).collect();
        let messages: Vec<Publish<'_>> = sent
            .iter()
            .enumerate()
            .map(|(k, &i)| Publish {
                subject: &subjects[k],
                message_id: ids[k].as_deref(),
                headers: &headers[k],
                payload: &events[i].body,
            })
            .collect();
        // One batch at a time, so that a batch sent again message by message keeps its place in the order.
        let mut at = 0;
        for batch in messages.chunks(ATOMIC_BATCH_MAX) {
            let ack = js.publish_atomic(&[batch]).map_err(bus)?.pop().unwrap_or(Err(NatsError::Timeout(js.timeout)));
            let stored = match ack {
                Ok(ack) => (0..batch.len() as u64).map(|j| Appended::Stored(ack.seq + 1 - ack.count + j)).collect(),
                Err(NatsError::Api { err_code: BATCH_DUPLICATE, .. }) => JetStreamLog::one_by_one(&js, batch)?,
                Err(e) => return Err(bus(e)),
            };
            for outcome in stored {
                outcomes[sent[at]] = Some(outcome);
                at += 1;
            }
        }
        Ok(outcomes.into_iter().map(|o| o.unwrap_or(Appended::Duplicate)).collect())
    }

    fn syncer(&self) -> Result<Box<dyn LogSyncer>, StoreError> {
        Ok(Box::new(Acknowledged))
    }

    fn delete(&mut self, seqs: &[u64]) -> Result<usize, StoreError> {
        let js = self.link.get()?;
        // JetStream answers a delete past the end with a store error, not "not found".
        let last = js.stream_info(&self.layout.stream).map_err(bus)?.map_or(0, |i| i.state.last_seq);
        let mut deleted = 0;
        for &seq in seqs.iter().filter(|&&seq| seq <= last) {
            deleted += usize::from(js.delete(&self.layout.stream, seq).map_err(bus)?);
        }
        Ok(deleted)
    }

    /// JetStream forgets message ids past the stream's duplicate window by itself.
    fn prune_dedup(&mut self, _before: tutti_core::Millis, _limit: usize) -> Result<(usize, usize), StoreError> {
        Ok((0, 0))
    }

    /// Deleted messages were overwritten when deleted: nothing is left to scrub.
    fn scrub(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// The `Nats-Msg-Id` of a client's `messageId`: its SHA-256 in hex. A `messageId` is the client's text, of any
/// characters up to 1 KB; a header value must not hold a line break (it would end the header block and let the
/// rest pass for other headers, `Nats-Batch-Commit` say), and a hash is one fixed, safe shape for every id.
fn dedup_id(message_id: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(message_id.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// What JetStream acknowledged is durable already (with `sync_interval: always`): nothing to flush.
struct Acknowledged;

impl LogSyncer for Acknowledged {
    fn sync(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// The log's read side on JetStream: every partition, or only some (a worker's).
pub struct JetStreamReader {
    link: Arc<Link>,
    layout: StreamLayout,
}

/// The most bytes one batched read asks for.
const READ_BYTES: usize = 16 << 20;

impl JetStreamReader {
    pub fn new(link: Arc<Link>, layout: StreamLayout) -> JetStreamReader {
        JetStreamReader { link, layout }
    }

    fn event(&self, message: StoredMessage) -> Result<StoredEvent, StoreError> {
        let received_at = message
            .header(RECEIVED_AT)
            .and_then(|r| r.parse().ok())
            .ok_or_else(|| StoreError::Corrupt(format!("message {} of the log has no {RECEIVED_AT}", message.seq)))?;
        let partition = self.layout.partition_of_subject(&message.subject);
        Ok(StoredEvent { seq: message.seq, received_at, body: message.data, partition })
    }
}

impl EventReader for JetStreamReader {
    fn read_after(&self, after: u64, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        let Some(from) = after.checked_add(1).filter(|_| limit > 0) else {
            return Ok(Vec::new());
        };
        let js = self.link.get()?;
        let messages = js.batch_from(&self.layout.stream, from, &self.layout.all(), limit, READ_BYTES).map_err(bus)?;
        messages.into_iter().map(|m| self.event(m)).collect()
    }

    fn read_seqs(&self, seqs: &[u64]) -> Result<Vec<StoredEvent>, StoreError> {
        let js = self.link.get()?;
        let mut out = Vec::with_capacity(seqs.len());
        for chunk in seqs.chunks(1000) {
            for message in js.get_all(&self.layout.stream, chunk).map_err(bus)?.into_iter().flatten() {
                out.push(self.event(message)?);
            }
        }
        Ok(out)
    }

    fn head(&self) -> Result<u64, StoreError> {
        let js = self.link.get()?;
        let info = js.stream_info(&self.layout.stream).map_err(bus)?;
        Ok(info.map_or(0, |i| i.state.last_seq))
    }
}

/// The core NATS subject on which processes announce the log's new head: outside the stream's subjects, so
/// announcements are not stored. At most once: [`watch_head`] also asks the stream now and then.
pub fn head_subject(layout: &StreamLayout) -> String {
    format!("{}-head.{}", layout.prefix, layout.stream)
}

/// A [`LogFeed`] for a process whose intake writes a shared log: it publishes heads to the feed of its own
/// threads, and announces them to the other processes ([`watch_head`]).
pub struct AnnouncingFeed {
    local: Arc<dyn LogFeed>,
    link: Arc<Link>,
    subject: String,
}

impl AnnouncingFeed {
    pub fn new(local: Arc<dyn LogFeed>, link: Arc<Link>, layout: &StreamLayout) -> AnnouncingFeed {
        AnnouncingFeed { local, link, subject: head_subject(layout) }
    }
}

impl LogFeed for AnnouncingFeed {
    fn publish(&self, head: u64) {
        self.local.publish(head);
        // Best effort: a lost announcement delays the others by at most their poll.
        if let Ok(js) = self.link.get() {
            let _ = js.connection().publish(&self.subject, &[], head.to_string().as_bytes());
        }
    }

    fn head(&self) -> u64 {
        self.local.head()
    }

    fn wait_beyond(&self, seen: u64, timeout: Duration) -> u64 {
        self.local.wait_beyond(seen, timeout)
    }

    fn close(&self) {
        self.local.close();
    }

    fn is_closed(&self) -> bool {
        self.local.is_closed()
    }
}

/// How often [`watch_head`] asks the stream for its head when no announcement came: the longest a processor
/// waits to hear of an event another process appended, if its announcement was lost.
pub const HEAD_POLL: Duration = Duration::from_secs(1);

/// Keeps `feed` at the shared log's head, on a thread of its own, until the feed closes: announcements from
/// the processes that append ([`AnnouncingFeed`]), and the stream's own head every [`HEAD_POLL`] without one.
/// NATS going away pauses it; it subscribes again once NATS is back.
pub fn watch_head(
    link: Arc<Link>,
    layout: StreamLayout,
    feed: Arc<dyn LogFeed>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("tutti-head".into()).spawn(move || {
        let subject = head_subject(&layout);
        while !feed.is_closed() {
            let js = match link.get() {
                Ok(js) => js,
                Err(_) => {
                    std::thread::park_timeout(HEAD_POLL);
                    continue;
                }
            };
            let Ok((sid, announcements)) = js.connection().subscribe(&subject) else { continue };
            loop {
                if feed.is_closed() {
                    let _ = js.connection().unsubscribe(sid);
                    return;
                }
                match announcements.recv_timeout(HEAD_POLL) {
                    Ok(message) => {
                        if let Some(head) = std::str::from_utf8(&message.payload).ok().and_then(|h| h.parse().ok()) {
                            feed.publish(head);
                        }
                    }
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => match js.stream_info(&layout.stream) {
                        Ok(Some(info)) => feed.publish(info.state.last_seq),
                        Ok(None) => {}
                        Err(e) if e.is_transient() => {
                            let _ = js.connection().unsubscribe(sid);
                            break;
                        }
                        Err(e) => tracing::warn!(error = %e, "reading the log's head failed"),
                    },
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                }
            }
        }
    })
}
