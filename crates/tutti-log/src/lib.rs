//! The event log as its consumers see it: partitioning by profile, and how they learn that the log has grown.
//! The log is written by `tutti-intake` and stored by `tutti-store` (`sqlite/events.rs`).
//!
//! Everything about one customer must be processed in order by one consumer. A [`Partitioner`] maps a routing
//! key (a profile's id, or before resolution an identity key) to one of a fixed number of partitions with a
//! stable hash, so the mapping is the same in every process and after every restart: the property a JetStream
//! bus with several workers relies on.
//!
//! In the embedded default there is one partition: identity resolution needs one global view of the identity
//! graph, which on one machine is simply the processor thread. A [`LogFeed`] tells that processor how far the
//! durable log has grown, so it can read new events without polling.

pub mod jetstream_log;
pub mod nats;

use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Maps routing keys to partitions. Implementations must be stable: the same key gives the same partition in
/// every process, across restarts and versions.
pub trait Partitioner: Send + Sync {
    /// The number of partitions, at least 1.
    fn partitions(&self) -> u32;
    /// The partition of a key, in `0..partitions()`.
    fn partition_of(&self, key: &[u8]) -> u32;
}

/// Stable FNV-1a hashing modulo the partition count.
#[derive(Debug, Clone, Copy)]
pub struct HashPartitioner {
    partitions: u32,
}

impl HashPartitioner {
    pub fn new(partitions: u32) -> HashPartitioner {
        HashPartitioner { partitions: partitions.max(1) }
    }
}

/// FNV-1a, 64 bit: fixed constants, so the value never depends on the process (unlike `std`'s `RandomState`).
pub fn stable_hash(key: &[u8]) -> u64 {
    tutti_core::hash::fnv1a(key)
}

impl Partitioner for HashPartitioner {
    fn partitions(&self) -> u32 {
        self.partitions
    }

    /// A key `p:<profile id>` (Tutti's own events about a profile) goes to the profile's home partition, its id
    /// modulo the count (where new profiles' ids put it, `tutti_store::IdBlock`), so those events are folded by
    /// the worker that folds the profile's own; any other key by its hash.
    fn partition_of(&self, key: &[u8]) -> u32 {
        let profile = key.strip_prefix(b"p:").and_then(|id| std::str::from_utf8(id).ok()?.parse::<u64>().ok());
        match profile {
            Some(id) => (id % u64::from(self.partitions)) as u32,
            None => (stable_hash(key) % u64::from(self.partitions)) as u32,
        }
    }
}

/// Publishes the durable head of the log to consumers.
pub trait LogFeed: Send + Sync {
    /// Announces that everything up to `head` is durable. Heads only grow; smaller values are ignored.
    fn publish(&self, head: u64);
    /// The durable head as last published.
    fn head(&self) -> u64;
    /// Waits until the head exceeds `seen`, or `timeout` passes, or the feed closes; returns the head.
    fn wait_beyond(&self, seen: u64, timeout: Duration) -> u64;
    /// Wakes every waiter for good (shutdown).
    fn close(&self);
    fn is_closed(&self) -> bool;
}

/// The in-process feed: a counter and a condition variable.
#[derive(Debug, Default)]
pub struct LocalFeed {
    state: Mutex<(u64, bool)>,
    changed: Condvar,
}

impl LocalFeed {
    pub fn new(head: u64) -> LocalFeed {
        LocalFeed { state: Mutex::new((head, false)), changed: Condvar::new() }
    }
}

impl LogFeed for LocalFeed {
    fn publish(&self, head: u64) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if head > state.0 {
            state.0 = head;
            self.changed.notify_all();
        }
    }

    fn head(&self) -> u64 {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).0
    }

    fn wait_beyond(&self, seen: u64, timeout: Duration) -> u64 {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (state, _) = self
            .changed
            .wait_timeout_while(state, timeout, |(head, closed)| *head <= seen && !*closed)
            .unwrap_or_else(|e| e.into_inner());
        state.0
    }

    fn close(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).1 = true;
        self.changed.notify_all();
    }

    fn is_closed(&self) -> bool {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn partitions_are_stable_and_spread() {
        let p = HashPartitioner::new(8);
        // FNV-1a's published test vectors: a change of hash would silently move every profile to another worker.
        assert_eq!(stable_hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(p.partition_of(b"user_id:42"), p.partition_of(b"user_id:42"));
        let mut counts = [0u32; 8];
        for i in 0..8000 {
            counts[p.partition_of(format!("anonymous_id:{i}").as_bytes()) as usize] += 1;
        }
        assert!(counts.iter().all(|c| (800..1200).contains(c)), "uneven spread: {counts:?}");
        // Tutti's own events about a profile go to its home partition; a key that only looks like one is hashed.
        assert_eq!((p.partition_of(b"p:13"), p.partition_of(b"p:16")), (5, 0));
        assert_eq!(p.partition_of(b"p:x13"), (stable_hash(b"p:x13") % 8) as u32);
    }

    #[test]
    fn waiters_wake_on_publish_and_close() {
        let feed = Arc::new(LocalFeed::new(5));
        let f = Arc::clone(&feed);
        let waiter = std::thread::spawn(move || f.wait_beyond(5, Duration::from_secs(60)));
        feed.publish(7);
        assert_eq!(waiter.join().unwrap(), 7);
        feed.publish(3);
        assert_eq!(feed.wait_beyond(0, Duration::ZERO), 7);
        assert_eq!(feed.head(), 7);
        let f = Arc::clone(&feed);
        let waiter = std::thread::spawn(move || f.wait_beyond(7, Duration::from_secs(60)));
        feed.close();
        assert_eq!(waiter.join().unwrap(), 7);
        assert!(feed.is_closed());
    }
}
