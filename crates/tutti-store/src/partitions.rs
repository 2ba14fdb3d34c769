//! How a store shared by several workers is divided: partitions held under leases, blocks of profile ids, and
//! which partition an event belongs to.

/// What places an event in a partition of a partitioned log: its `userId`, else its `anonymousId`, else its
/// message id; Tutti's own events about a profile (`anonymousId: "tutti:profile:<n>"`) by the profile, `p:<n>`.
/// The appender routes by it, and a processor reading the log back works out the same partition.
pub fn routing_key(user_id: Option<&str>, anonymous_id: Option<&str>, message_id: &str) -> String {
    if let Some(profile) = anonymous_id.and_then(|a| a.strip_prefix("tutti:profile:"))
        && user_id.is_none()
    {
        return format!("p:{profile}");
    }
    match (user_id, anonymous_id) {
        (Some(user), _) => format!("u:{user}"),
        (None, Some(anonymous)) => format!("a:{anonymous}"),
        (None, None) => format!("m:{message_id}"),
    }
}

/// A partition of the log held under a lease, with the fencing token its writes carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Held {
    pub partition: u32,
    pub token: i64,
}

/// Profile ids a processor may give new profiles: `next`, `next + stride`, ... below `end`.
///
/// One processor alone counts from the store's next id, one by one, with no end. Processors sharing a store
/// each reserve blocks per partition, so no two ever give out the same id; a partition's ids are those equal to
/// it modulo the partition count, which makes a profile's home partition its id modulo the count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdBlock {
    pub start: u64,
    pub next: u64,
    pub end: u64,
    pub stride: u64,
}

impl IdBlock {
    /// Every id from `next` up, one by one.
    pub fn from(next: u64) -> IdBlock {
        IdBlock { start: next, next, end: u64::MAX, stride: 1 }
    }

    /// The next id, if the block has one left.
    pub fn take(&mut self) -> Option<u64> {
        if self.next >= self.end {
            return None;
        }
        let id = self.next;
        self.next = self.next.saturating_add(self.stride);
        Some(id)
    }

    /// Whether `id` is one of the block's (given out or not).
    pub fn contains(&self, id: u64) -> bool {
        id >= self.start && id < self.end && (id - self.start).is_multiple_of(self.stride)
    }
}
