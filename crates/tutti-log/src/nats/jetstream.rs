//! JetStream's API, as Tutti uses it: streams made and read, messages published with an acknowledgement,
//! read back by sequence (one, or a batch after a point on a subject filter), and deleted.
//!
//! Every call is a request on `$JS.API.*` answered in JSON ("JetStream wire API reference" in the NATS
//! documentation). Reads use the direct get API (`$JS.API.DIRECT.GET.<stream>`, streams made with
//! `allow_direct`), which answers with the stored message itself; its batch form needs NATS 2.11 or later.

use std::time::Duration;

use serde_json::Value;

use super::connection::{Connection, Request};
use super::wire::Message;
use super::{NatsError, Options};

/// A JetStream context over one connection.
pub struct JetStream {
    connection: Connection,
    /// How long an API call may take.
    pub timeout: Duration,
    /// Atomic batches' ids: this context's random prefix and a counter.
    batch_prefix: String,
    batches: std::sync::atomic::AtomicU64,
}

/// The most messages in one atomic batch (the server's default `max_batch_size`).
pub const ATOMIC_BATCH_MAX: usize = 1000;

/// JetStream's error code for an atomic batch that holds a message id already stored.
pub const BATCH_DUPLICATE: u32 = 10201;

/// What the server said when it stored a published message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct PubAck {
    pub stream: String,
    pub seq: u64,
    /// A message with the same `Nats-Msg-Id` was stored within the stream's duplicate window; `seq` is its.
    #[serde(default)]
    pub duplicate: bool,
    /// For an atomic batch's commit: how many messages the batch stored, the last under `seq`.
    #[serde(default)]
    pub count: u64,
}

/// A stream's counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(default)]
pub struct StreamState {
    pub messages: u64,
    pub bytes: u64,
    pub first_seq: u64,
    pub last_seq: u64,
}

/// A stream as `STREAM.INFO` describes it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct StreamInfo {
    pub config: Value,
    pub state: StreamState,
}

/// A message read back from a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub seq: u64,
    pub subject: String,
    /// The headers it was published with (JetStream's own `Nats-*` headers of the answer left out).
    pub headers: Vec<(String, String)>,
    pub data: Vec<u8>,
}

impl StoredMessage {
    /// The first value of a header, its name matched without regard to case.
    pub fn header(&self, name: &str) -> Option<&str> {
        super::wire::header(&self.headers, name)
    }
}

/// A message to publish into a stream.
#[derive(Debug, Clone, Copy)]
pub struct Publish<'a> {
    pub subject: &'a str,
    /// `Nats-Msg-Id`: the stream stores one message per id within its duplicate window.
    pub message_id: Option<&'a str>,
    /// More headers.
    pub headers: &'a [(&'a str, &'a str)],
    pub payload: &'a [u8],
}

/// The direct get answers' own headers, which are not the message's.
const ANSWER_HEADERS: [&str; 5] =
    ["Nats-Stream", "Nats-Subject", "Nats-Sequence", "Nats-Time-Stamp", "Nats-Num-Pending"];

impl JetStream {
    pub fn new(connection: Connection) -> JetStream {
        let mut random = [0u8; 8];
        let _ = getrandom::fill(&mut random);
        JetStream {
            connection,
            timeout: Duration::from_secs(10),
            batch_prefix: random.iter().map(|b| format!("{b:02x}")).collect(),
            batches: Default::default(),
        }
    }

    /// Connects and checks that the server runs JetStream.
    pub fn connect(options: &Options) -> Result<JetStream, NatsError> {
        let connection = Connection::connect(options)?;
        if !connection.info().jetstream {
            return Err(NatsError::Connect(format!(
                "the NATS server {} runs without JetStream (start it with -js, or `jetstream {{}}` in its config)",
                connection.info().server_id
            )));
        }
        Ok(JetStream::new(connection))
    }

    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    /// One API call: `$JS.API.<what>` with a JSON body; the answer's `error` becomes [`NatsError::Api`].
    pub fn api(&self, what: &str, body: &Value) -> Result<Value, NatsError> {
        let subject = format!("$JS.API.{what}");
        let payload = if body.is_null() { Vec::new() } else { body.to_string().into_bytes() };
        let answer = self.connection.request(Request::new(&subject, &payload), self.timeout)?;
        if answer.status == Some(503) {
            return Err(NatsError::NoResponders(subject));
        }
        read_api(&answer.payload)
    }

    /// The stream's description, or `None` when there is no such stream.
    pub fn stream_info(&self, stream: &str) -> Result<Option<StreamInfo>, NatsError> {
        match self.api(&format!("STREAM.INFO.{stream}"), &Value::Null) {
            Ok(value) => serde_json::from_value(value)
                .map(Some)
                .map_err(|e| NatsError::Protocol(format!("a stream's info: {e}"))),
            Err(NatsError::Api { code: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Makes a stream; `config` is JetStream's stream configuration with at least `name` and `subjects`.
    pub fn create_stream(&self, config: &Value) -> Result<StreamInfo, NatsError> {
        let name = config["name"].as_str().unwrap_or_default();
        let value = self.api(&format!("STREAM.CREATE.{name}"), config)?;
        serde_json::from_value(value).map_err(|e| NatsError::Protocol(format!("a stream's info: {e}")))
    }

    /// Changes a stream's configuration (the fields JetStream lets change).
    pub fn update_stream(&self, config: &Value) -> Result<StreamInfo, NatsError> {
        let name = config["name"].as_str().unwrap_or_default();
        let value = self.api(&format!("STREAM.UPDATE.{name}"), config)?;
        serde_json::from_value(value).map_err(|e| NatsError::Protocol(format!("a stream's info: {e}")))
    }

    /// Publishes messages in one write and waits for each one's acknowledgement, in order. The outer error
    /// means none is known to be stored; an inner one, that this message was not.
    pub fn publish_all(&self, messages: &[Publish<'_>]) -> Result<Vec<Result<PubAck, NatsError>>, NatsError> {
        let headers: Vec<Vec<(&str, &str)>> = messages
            .iter()
            .map(|m| {
                let mut h: Vec<(&str, &str)> = m.message_id.map(|id| ("Nats-Msg-Id", id)).into_iter().collect();
                h.extend_from_slice(m.headers);
                h
            })
            .collect();
        let requests: Vec<Request<'_>> = messages
            .iter()
            .zip(&headers)
            .map(|(m, h)| Request { subject: m.subject, headers: h, payload: m.payload })
            .collect();
        let answers = self.connection.request_all(&requests, self.timeout)?;
        Ok(answers
            .into_iter()
            .zip(messages)
            .map(|(answer, message)| {
                let answer = answer?;
                if answer.status == Some(503) {
                    return Err(NatsError::NoResponders(message.subject.to_owned()));
                }
                serde_json::from_value(read_api(&answer.payload)?)
                    .map_err(|e| NatsError::Protocol(format!("a publish acknowledgement: {e}")))
            })
            .collect())
    }

    /// Publishes batches, each stored atomically: all its messages, under consecutive sequence numbers in the
    /// order given, or none (JetStream's atomic batch publish, NATS 2.12 or later, on a stream made with
    /// `allow_atomic`). All batches go in one write; one acknowledgement per batch comes back, its `seq` the
    /// last message's. A server that syncs each write to disk syncs once per batch. A batch holding a message
    /// id stored before is refused whole, with [`BATCH_DUPLICATE`]. Batches hold at most [`ATOMIC_BATCH_MAX`].
    pub fn publish_atomic(&self, batches: &[&[Publish<'_>]]) -> Result<Vec<Result<PubAck, NatsError>>, NatsError> {
        let ids: Vec<String> = batches
            .iter()
            .map(|_| {
                format!("{}-{}", self.batch_prefix, self.batches.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
            })
            .collect();
        let sequences: Vec<String> = (1..=ATOMIC_BATCH_MAX).map(|n| n.to_string()).collect();
        let mut headers: Vec<Vec<(&str, &str)>> = Vec::new();
        let mut commits = Vec::new();
        for (batch, id) in batches.iter().zip(&ids) {
            if batch.is_empty() || batch.len() > ATOMIC_BATCH_MAX {
                return Err(NatsError::Protocol(format!("an atomic batch of {} messages", batch.len())));
            }
            for (i, message) in batch.iter().enumerate() {
                let mut h = vec![("Nats-Batch-Id", id.as_str()), ("Nats-Batch-Sequence", sequences[i].as_str())];
                if i + 1 == batch.len() {
                    h.push(("Nats-Batch-Commit", "1"));
                    commits.push(headers.len());
                }
                h.extend(message.message_id.map(|id| ("Nats-Msg-Id", id)));
                h.extend_from_slice(message.headers);
                headers.push(h);
            }
        }
        let messages: Vec<Request<'_>> = batches
            .iter()
            .flat_map(|batch| batch.iter())
            .zip(&headers)
            .map(|(m, h)| Request { subject: m.subject, headers: h, payload: m.payload })
            .collect();
        let mut answers = self.connection.exchange(&messages, |i| commits.binary_search(&i).is_ok(), self.timeout)?;
        Ok(commits
            .iter()
            .zip(batches)
            .map(|(&at, batch)| {
                let answer = answers[at].take().unwrap_or(Err(NatsError::Timeout(self.timeout)))?;
                if answer.status == Some(503) {
                    return Err(NatsError::NoResponders(batch[0].subject.to_owned()));
                }
                let ack: PubAck = serde_json::from_value(read_api(&answer.payload)?)
                    .map_err(|e| NatsError::Protocol(format!("a batch acknowledgement: {e}")))?;
                if ack.count != batch.len() as u64 {
                    return Err(NatsError::Protocol(format!("a batch of {} stored as {}", batch.len(), ack.count)));
                }
                Ok(ack)
            })
            .collect())
    }

    /// The messages stored under these sequence numbers, in the order given; `None` where there is none (never
    /// stored, or deleted).
    pub fn get_all(&self, stream: &str, seqs: &[u64]) -> Result<Vec<Option<StoredMessage>>, NatsError> {
        let subject = format!("$JS.API.DIRECT.GET.{stream}");
        let bodies: Vec<Vec<u8>> = seqs.iter().map(|seq| format!("{{\"seq\":{seq}}}").into_bytes()).collect();
        let requests: Vec<Request<'_>> = bodies.iter().map(|b| Request::new(&subject, b)).collect();
        let mut out = Vec::with_capacity(seqs.len());
        for answer in self.connection.request_all(&requests, self.timeout)? {
            out.push(read_direct(answer?, &subject)?);
        }
        Ok(out)
    }

    /// Up to `batch` messages on subjects matching `filter`, from sequence `from` on, in sequence order, at most
    /// about `max_bytes` of them.
    pub fn batch_from(
        &self,
        stream: &str,
        from: u64,
        filter: &str,
        batch: usize,
        max_bytes: usize,
    ) -> Result<Vec<StoredMessage>, NatsError> {
        let subject = format!("$JS.API.DIRECT.GET.{stream}");
        let body = serde_json::json!({"seq": from.max(1), "next_by_subj": filter, "batch": batch.max(1), "max_bytes": max_bytes})
            .to_string();
        let mut out = Vec::new();
        let mut failure = None;
        let mut finished = false;
        self.connection.request_many(Request::new(&subject, body.as_bytes()), self.timeout, |answer| {
            match answer.status {
                // The end of the batch (204), or nothing there at all (404).
                Some(204) | Some(404) => {
                    finished = true;
                    return false;
                }
                Some(_) => {
                    failure = Some(status_error(&answer, &subject));
                    return false;
                }
                None => {}
            }
            match stored(answer) {
                Ok(message) => out.push(message),
                Err(e) => {
                    failure = Some(e);
                    return false;
                }
            }
            out.len() < batch.max(1)
        })?;
        if let Some(e) = failure {
            return Err(e);
        }
        if !finished && out.len() < batch.max(1) {
            // The server went quiet before saying the batch was over: a batch cut short would look like the
            // end of the stream, so it is an error instead.
            return Err(NatsError::Timeout(self.timeout));
        }
        Ok(out)
    }

    /// Deletes a message, overwriting its bytes in the store (`no_erase: false`). `false` when it was not there.
    pub fn delete(&self, stream: &str, seq: u64) -> Result<bool, NatsError> {
        match self.api(&format!("STREAM.MSG.DELETE.{stream}"), &serde_json::json!({"seq": seq})) {
            Ok(answer) => Ok(answer["success"].as_bool().unwrap_or(false)),
            // 10043: "sequence not found" (already deleted); 10037: "no message found".
            Err(NatsError::Api { err_code: 10043 | 10037, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

fn read_api(payload: &[u8]) -> Result<Value, NatsError> {
    let value: Value =
        serde_json::from_slice(payload).map_err(|e| NatsError::Protocol(format!("a JetStream answer: {e}")))?;
    if let Some(error) = value.get("error") {
        return Err(NatsError::Api {
            code: error["code"].as_u64().unwrap_or(0) as u16,
            err_code: error["err_code"].as_u64().unwrap_or(0) as u32,
            description: error["description"].as_str().unwrap_or("no description").to_owned(),
        });
    }
    Ok(value)
}

fn status_error(answer: &Message, subject: &str) -> NatsError {
    match answer.status {
        Some(503) => NatsError::NoResponders(subject.to_owned()),
        status => NatsError::Api {
            code: status.unwrap_or(0),
            err_code: 0,
            description: if answer.description.is_empty() {
                "no description".into()
            } else {
                answer.description.clone()
            },
        },
    }
}

fn read_direct(answer: Message, subject: &str) -> Result<Option<StoredMessage>, NatsError> {
    match answer.status {
        None => stored(answer).map(Some),
        Some(404) => Ok(None),
        Some(_) => Err(status_error(&answer, subject)),
    }
}

fn stored(answer: Message) -> Result<StoredMessage, NatsError> {
    let seq = answer
        .header("Nats-Sequence")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| NatsError::Protocol("a direct get answer without Nats-Sequence".into()))?;
    let subject = answer.header("Nats-Subject").unwrap_or_default().to_owned();
    let headers =
        answer.headers.into_iter().filter(|(k, _)| !ANSWER_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(k))).collect();
    Ok(StoredMessage { seq, subject, headers, data: answer.payload })
}
