//! One item (a card, a task) per topic for the `upsert_*` operations of Trello and Asana, with the reports it
//! carries counted; and the per-key locks that keep two actions for one topic from both creating, in this
//! process and, through the memory they share, in every worker.

use std::future::Future;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use crate::{Failure, Memory};

/// How often a topic another worker holds is asked for again, and how long at most before the action is retried
/// later instead: a holder keeps it for one round trip to the vendor.
const HELD_ELSEWHERE_POLL: std::time::Duration = std::time::Duration::from_millis(25);
const HELD_ELSEWHERE_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// One async lock per key (a topic), so two actions for the same key never both find nothing and both create.
#[derive(Default)]
pub(crate) struct KeyedLocks(std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl KeyedLocks {
    pub(crate) async fn lock(&self, key: &str) -> KeyGuard<'_> {
        let lock = self.0.lock().expect("never poisoned").entry(key.to_owned()).or_default().clone();
        let guard = lock.clone().lock_owned().await;
        KeyGuard { locks: self, key: key.to_owned(), lock, _guard: guard }
    }
}

pub(crate) struct KeyGuard<'a> {
    locks: &'a KeyedLocks,
    key: String,
    lock: Arc<tokio::sync::Mutex<()>>,
    _guard: tokio::sync::OwnedMutexGuard<()>,
}

impl Drop for KeyGuard<'_> {
    fn drop(&mut self) {
        let mut map = self.locks.0.lock().expect("never poisoned");
        // Ours, the map's and the guard's: nobody else waits, so the entry goes.
        if Arc::strong_count(&self.lock) <= 3 {
            map.remove(&self.key);
        }
    }
}

/// One item (a card, a task) per topic, for the `upsert_*` operations: the first action for a topic creates the
/// item and remembers its id in the connector memory; every later one comments on it. Actions for one topic are
/// serialised, so two at once cannot both create; an item deleted on the vendor's side (404 on the comment) is
/// created again.
///
/// Each item counts the reports it carries (its creation is the first, each comment one more), and each comment
/// is numbered with its report, so the card says how many people raised the topic. The number an action was
/// given is remembered by its key: a retry of an action the vendor already took gets the same number, never a
/// new one.
pub(crate) struct Topics {
    connector: &'static str,
    memory: Arc<dyn Memory>,
    locks: KeyedLocks,
}

/// What an upsert came to.
pub(crate) struct Upserted {
    pub topic: String,
    pub id: String,
    pub created: bool,
    /// The reports the item now carries, this one included.
    pub reports: u64,
    pub answer: Value,
}

/// What the memory holds for a topic: the item and how many reports it carries. (A bare id, as written before
/// counts were kept, reads as one report.)
#[derive(serde::Serialize, Deserialize)]
struct TopicItem {
    id: String,
    reports: u64,
}

impl TopicItem {
    fn read(stored: &str) -> TopicItem {
        serde_json::from_str(stored).unwrap_or_else(|_| TopicItem { id: stored.to_owned(), reports: 1 })
    }
}

impl Topics {
    pub(crate) fn new(connector: &'static str, memory: Arc<dyn Memory>) -> Topics {
        Topics { connector, memory, locks: KeyedLocks::default() }
    }

    /// Holds a topic's key among every worker sharing the memory, waiting while another holds it.
    async fn hold(&self, key: &str) -> Result<Box<dyn Send>, Failure> {
        let started = tokio::time::Instant::now();
        loop {
            match self.memory.try_hold(self.connector, key) {
                Ok(Some(held)) => return Ok(held),
                Ok(None) if started.elapsed() < HELD_ELSEWHERE_WAIT => tokio::time::sleep(HELD_ELSEWHERE_POLL).await,
                Ok(None) => return Err(Failure::transient("another worker is writing this topic's item")),
                Err(e) => return Err(Failure::transient(format!("memory: {e}"))),
            }
        }
    }

    /// `comment(id, report)` on the topic's remembered item, or `create()` and remember the id `id_of` finds in
    /// its answer (`missing` is the error when there is none). `action_key` is the action's idempotency key.
    pub(crate) async fn upsert<C, Fc, K, Fk>(
        &self,
        raw_topic: &str,
        action_key: &str,
        comment: C,
        create: K,
        id_of: fn(&Value) -> Option<&str>,
        missing: &'static str,
    ) -> Result<Upserted, Failure>
    where
        C: FnOnce(String, u64) -> Fc,
        Fc: Future<Output = Result<Value, Failure>>,
        K: FnOnce() -> Fk,
        Fk: Future<Output = Result<Value, Failure>>,
    {
        let memory_error = |e: String| Failure::transient(format!("memory: {e}"));
        let topic = topic_key(raw_topic);
        let _serialised = self.locks.lock(&topic).await;
        let key = format!("topic/{topic}");
        let _held_here = self.hold(&key).await?;
        let counted_key = format!("counted/{action_key}");
        let remembered = self.memory.get(self.connector, &key).map_err(memory_error)?.map(|s| TopicItem::read(&s));
        if let Some(item) = remembered {
            let counted = self.memory.get(self.connector, &counted_key).map_err(memory_error)?;
            let report = match counted.and_then(|n| n.parse().ok()) {
                Some(already) => already,
                None => item.reports + 1,
            };
            match comment(item.id.clone(), report).await {
                Ok(answer) => {
                    let reports = item.reports.max(report);
                    self.memory.put(self.connector, &counted_key, &report.to_string()).map_err(memory_error)?;
                    let stored = serde_json::to_string(&TopicItem { id: item.id.clone(), reports }).expect("plain");
                    self.memory.put(self.connector, &key, &stored).map_err(memory_error)?;
                    return Ok(Upserted { topic, id: item.id, created: false, reports, answer });
                }
                // Deleted on the vendor's side: created again below.
                Err(Failure::Permanent(e)) if e.starts_with("HTTP 404") => {}
                Err(other) => return Err(other),
            }
        }
        let answer = create().await?;
        let id = id_of(&answer).ok_or_else(|| Failure::permanent(missing))?.to_owned();
        let stored = serde_json::to_string(&TopicItem { id: id.clone(), reports: 1 }).expect("plain");
        self.memory.put(self.connector, &key, &stored).map_err(memory_error)?;
        Ok(Upserted { topic, id, created: true, reports: 1, answer })
    }
}

/// A comment carrying the number of the report it is (`#3: ...`): the item's own count, in any language.
pub(crate) fn numbered(report: u64, text: &str) -> String {
    format!("#{report}: {text}")
}

/// A topic as a memory key: its topic in the shipped objection taxonomy when it has one (so "lo ngại bảo mật
/// dữ liệu", "担心数据安全" and "worried about data security" share a card), else its words trimmed, lower-cased,
/// spaces collapsed.
pub(crate) fn topic_key(raw: &str) -> String {
    tutti_ai::topics::TopicTaxonomy::builtin().key(raw)
}
