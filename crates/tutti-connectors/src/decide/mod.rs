//! `decide`: what a website slot shows a profile.
//!
//! A flow step sets it (`decide.set` with `slot`, `content`, optionally `data` and `ttl`) or clears it
//! (`decide.clear`); the website asks `GET /api/v1/decide?profile=...&slot=...` and is answered from memory.
//! Each decision is written to the connector memory (`connectors.db`) before it is held in memory, and read back
//! at start, so a restart keeps what every slot shows. An expired decision answers as none.
//!
//! Needs no configuration; its table may set the dispatcher's settings only.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::CheckedConfig;
use crate::{Action, Context, Delivery, Failure, Kind, Memory, Operation, Sender, Settings, optional_text, text};

mod config;

pub static KIND: Kind = Kind {
    name: "decide",
    channel: "web",
    operations: &[Operation::taking("set", &["slot", "content", "data", "ttl"]), Operation::taking("clear", &["slot"])],
    default_on: true,
    units: crate::per_action,
    validate: config::validate,
};

/// The longest content and data kept per slot.
const MAX_CONTENT: usize = 4 * 1024;
const MAX_DATA: usize = 16 * 1024;

/// What a slot shows one profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlotDecision {
    pub content: String,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub data: Value,
    pub flow: String,
    pub set_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

/// Every profile's slots, in memory, behind a read-write lock: reads never wait for each other. Or, when
/// other processes write the connector memory too (workers sharing Postgres, each delivering its own
/// partitions' decisions), nothing held here: each ask reads the memory.
#[derive(Default)]
pub struct Decisions {
    map: RwLock<HashMap<u64, HashMap<String, SlotDecision>>>,
    read_through: Option<Arc<dyn Memory>>,
}

fn memory_key(profile: u64, slot: &str) -> String {
    format!("{profile:020}/{slot}")
}

impl Decisions {
    /// Decisions asked of `memory` each time, which other processes write too.
    pub fn read_through(memory: Arc<dyn Memory>) -> Decisions {
        Decisions { map: RwLock::default(), read_through: Some(memory) }
    }

    /// The decision in force for a profile's slot at `now`. A memory that cannot be read answers none (the
    /// website shows its default), with a warning.
    pub fn get(&self, profile: u64, slot: &str, now: i64) -> Option<SlotDecision> {
        let decision = match &self.read_through {
            Some(memory) => match memory.get(KIND.name, &memory_key(profile, slot)) {
                Ok(stored) => serde_json::from_str::<SlotDecision>(&stored?).ok()?,
                Err(error) => {
                    tracing::warn!(error, "a website decision cannot be read; answering none");
                    return None;
                }
            },
            None => self.map.read().unwrap_or_else(|e| e.into_inner()).get(&profile)?.get(slot)?.clone(),
        };
        if decision.expires_at.is_some_and(|at| at <= now) {
            return None;
        }
        Some(decision)
    }

    fn set(&self, profile: u64, slot: &str, decision: SlotDecision) {
        if self.read_through.is_some() {
            return;
        }
        self.map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(profile)
            .or_default()
            .insert(slot.to_owned(), decision);
    }

    fn clear(&self, profile: u64, slot: &str) {
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        if let Some(slots) = map.get_mut(&profile) {
            slots.remove(slot);
            if slots.is_empty() {
                map.remove(&profile);
            }
        }
    }

    /// Reads every stored decision back (at start). Returns how many (none when reading through).
    pub fn load(&self, memory: &dyn Memory) -> Result<usize, String> {
        if self.read_through.is_some() {
            return Ok(0);
        }
        let mut after = String::new();
        let mut count = 0;
        loop {
            let page = memory.scan(KIND.name, "", &after, 10_000)?;
            let Some((last, _)) = page.last() else { break };
            after = last.clone();
            for (key, value) in &page {
                let Some((profile, slot)) = key.split_once('/') else { continue };
                let (Ok(profile), Ok(decision)) = (profile.parse::<u64>(), serde_json::from_str::<SlotDecision>(value))
                else {
                    continue;
                };
                self.set(profile, slot, decision);
                count += 1;
            }
        }
        Ok(count)
    }

    /// Forgets every decision of a profile (its erasure), in memory and in storage.
    pub fn forget(&self, profile: u64, memory: &dyn Memory) -> Result<usize, String> {
        let prefix = format!("{profile:020}/");
        let keys: Vec<String> = memory.scan(KIND.name, &prefix, "", 100_000)?.into_iter().map(|(k, _)| k).collect();
        memory.remove(KIND.name, &keys)?;
        self.map.write().unwrap_or_else(|e| e.into_inner()).remove(&profile);
        Ok(keys.len())
    }

    /// Profiles with at least one decision held here (none when reading through).
    pub fn profiles(&self) -> usize {
        self.map.read().unwrap_or_else(|e| e.into_inner()).len()
    }
}
impl CheckedConfig for config::Checked {
    fn build(self: Box<Self>, _: &Settings) -> Arc<dyn Sender> {
        Arc::new(Decide { memory: self.memory, decisions: self.decisions })
    }
}

struct Decide {
    memory: Arc<dyn Memory>,
    decisions: Arc<Decisions>,
}

fn slot(payload: &Value, operation: &str) -> Result<String, Failure> {
    let slot = text(payload, "slot", operation)?.trim();
    if slot.chars().count() > 128 || slot.contains('/') {
        return Err(Failure::permanent("a `slot` is at most 128 characters, without `/`"));
    }
    Ok(slot.to_owned())
}

impl Decide {
    fn set(&self, action: Action<'_>) -> Result<Value, Failure> {
        let p = action.payload;
        KIND.check(&action)?;
        let slot = slot(p, "set")?;
        let content = text(p, "content", "set")?;
        if content.len() > MAX_CONTENT {
            return Err(Failure::permanent(format!("`content` is longer than {MAX_CONTENT} bytes")));
        }
        let data = match p.get("data") {
            None | Some(Value::Null) => Value::Null,
            Some(Value::String(s)) => serde_json::from_str(s)
                .map_err(|e| Failure::permanent(format!("`data` rendered to text that is not JSON ({e})")))?,
            Some(v) => v.clone(),
        };
        if data.to_string().len() > MAX_DATA {
            return Err(Failure::permanent(format!("`data` is larger than {MAX_DATA} bytes")));
        }
        let expires_at = match optional_text(p, "ttl")? {
            Some(ttl) => Some(
                action.now
                    + tutti_core::time::parse_duration(ttl).map_err(|e| Failure::permanent(format!("`ttl`: {e}")))?,
            ),
            None => None,
        };
        let decision = SlotDecision {
            content: content.to_owned(),
            data,
            flow: action.flow.to_owned(),
            set_at: action.now,
            expires_at,
        };
        let stored = serde_json::to_string(&decision).expect("serialises");
        self.memory
            .put(KIND.name, &memory_key(action.profile, &slot), &stored)
            .map_err(|e| Failure::transient(format!("the decision cannot be stored: {e}")))?;
        self.decisions.set(action.profile, &slot, decision);
        Ok(json!({"slot": slot, "content": content, "expires_at": expires_at}))
    }

    fn clear(&self, action: Action<'_>) -> Result<Value, Failure> {
        KIND.check(&action)?;
        let slot = slot(action.payload, "clear")?;
        self.memory
            .remove(KIND.name, &[memory_key(action.profile, &slot)])
            .map_err(|e| Failure::transient(format!("the decision cannot be cleared: {e}")))?;
        self.decisions.clear(action.profile, &slot);
        Ok(json!({"slot": slot, "cleared": true}))
    }
}

impl Sender for Decide {
    fn send<'a>(&'a self, action: Action<'a>) -> Delivery<'a> {
        Box::pin(async move {
            match action.operation {
                "set" => self.set(action),
                "clear" => self.clear(action),
                other => Err(crate::unknown_operation("decide", other)),
            }
        })
    }

    fn health(&self) -> Delivery<'_> {
        Box::pin(async move {
            self.memory.get(KIND.name, "health").map_err(Failure::transient)?;
            Ok(json!({"ok": true, "profiles": self.decisions.profiles()}))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Shared;

    fn action<'a>(operation: &'a str, payload: &'a Value, profile: u64, now: i64) -> Action<'a> {
        Action {
            key: "k",
            profile,
            flow: "f",
            step: "s",
            operation,
            category: "c",
            channel: "web",
            payload,
            now,
            tracking: true,
        }
    }

    #[test]
    fn decisions_are_set_expire_clear_and_survive_a_restart() {
        let shared = Shared::in_memory();
        let decide = Decide { memory: shared.memory.clone(), decisions: shared.decisions.clone() };
        let set = json!({"slot": "home-hero", "content": "case-study/fintech", "data": "{\"vi\": \"Câu chuyện\"}", "ttl": "1h"});
        decide.set(action("set", &set, 42, 1_000)).unwrap();
        let got = shared.decisions.get(42, "home-hero", 2_000).unwrap();
        assert_eq!((got.content.as_str(), &got.data), ("case-study/fintech", &json!({"vi": "Câu chuyện"})));
        assert_eq!(shared.decisions.get(42, "home-hero", 1_000 + 3_600_000), None, "expired");
        assert_eq!(shared.decisions.get(7, "home-hero", 2_000), None);

        let reloaded = Decisions::default();
        assert_eq!(reloaded.load(&*shared.memory).unwrap(), 1);
        assert_eq!(reloaded.get(42, "home-hero", 2_000), Some(got));

        decide.set(action("set", &json!({"slot": "footer", "content": "x"}), 43, 1_000)).unwrap();
        assert_eq!(shared.decisions.forget(43, &*shared.memory).unwrap(), 1, "an erasure forgets them");
        assert_eq!(shared.decisions.get(43, "footer", 1_000), None);
        decide.clear(action("clear", &json!({"slot": "home-hero"}), 42, 3_000)).unwrap();
        assert_eq!(shared.decisions.get(42, "home-hero", 3_000), None);
        let empty = Decisions::default();
        assert_eq!(empty.load(&*shared.memory).unwrap(), 0, "cleared durably too");

        // Another process's decisions, read through the memory they share.
        let elsewhere = Decide { memory: shared.memory.clone(), decisions: shared.decisions.clone() };
        elsewhere.set(action("set", &json!({"slot": "sidebar", "content": "demo", "ttl": "1m"}), 44, 5_000)).unwrap();
        let here = Decisions::read_through(shared.memory.clone());
        assert_eq!(here.get(44, "sidebar", 6_000).map(|d| d.content), Some("demo".to_owned()));
        assert_eq!(here.get(44, "sidebar", 65_000), None, "expired");
        elsewhere.clear(action("clear", &json!({"slot": "sidebar"}), 44, 7_000)).unwrap();
        assert_eq!(here.get(44, "sidebar", 7_000), None, "cleared elsewhere");
        for bad in [
            json!({"slot": "a/b", "content": "x"}),
            json!({"slot": "a"}),
            json!({"slot": "a", "content": "x", "ttl": "soon"}),
        ] {
            assert!(matches!(decide.set(action("set", &bad, 1, 0)), Err(Failure::Permanent(_))), "{bad}");
        }
    }
}
