//! Which outbox rows the dispatcher holds in memory.

use std::collections::{BTreeMap, HashSet};

use tutti_core::{Millis, ProfileId};
use tutti_store::{OutboxRow, Outcome};

/// The most rows taken from the table per read.
const READ: usize = 4_096;

/// Which outbox rows the dispatcher holds in memory, and the rules that keep it from taking one twice.
///
/// A row is taken from the processor's hand-off or from a read of the table, held until its outcome is
/// recorded (and, for a retry, until it is tried again), and only then let go. Reads go in queue order and
/// remember how far they reached (`cursor`): every row at or below it was pending in the table when read (the
/// processor queues in increasing order and commits in order), so a hand-off at or below the cursor came through
/// a read already and is ignored; a read skips what is held. Rows that do not fit stay in the table and mark the
/// table `behind`, which reads catch up on.
pub(super) struct InFlight {
    /// Rows held: with a delivery thread, attempted and not yet recorded, or waiting for a retry.
    held: HashSet<u64>,
    /// Rows waiting for a retry, by when it is due.
    pub(super) retries: BTreeMap<(Millis, u64), OutboxRow>,
    /// The highest sequence number a read of the table reached: a hand-off at or below it came through a read.
    cursor: u64,
    /// Where the next read starts: the cursor, or before it after a replay.
    pub(super) read_from: u64,
    /// Whether the table may hold pending rows that are not held (at start, and after rows were turned away).
    behind: bool,
    capacity: usize,
}

impl InFlight {
    pub(super) fn new(capacity: usize) -> InFlight {
        InFlight { held: HashSet::new(), retries: BTreeMap::new(), cursor: 0, read_from: 0, behind: true, capacity }
    }

    /// Takes rows the processor queued; returns those due now. Rows it has no room for stay in the table.
    pub(super) fn queued(&mut self, rows: Vec<OutboxRow>, now: Millis) -> Vec<OutboxRow> {
        let mut ready = Vec::with_capacity(rows.len());
        for row in rows {
            if row.seq <= self.cursor || self.held.contains(&row.seq) {
                continue;
            }
            if self.held.len() >= self.capacity {
                self.behind = true;
                continue;
            }
            self.hold(row, now, &mut ready);
        }
        ready
    }

    /// How many rows the next read of the table may take, if one is wanted: only when behind, and only with
    /// room for a good share of a read, so reads are not wasted one row at a time.
    pub(super) fn read_room(&self) -> Option<usize> {
        let room = self.capacity.saturating_sub(self.held.len()).min(READ);
        (self.behind && room >= (self.capacity / 2).min(READ)).then_some(room)
    }

    /// Takes what a read of pending rows after `read_from` returned (in queue order, no more than
    /// [`InFlight::read_room`]); `asked` is how many the read asked for. Returns the rows due now.
    pub(super) fn read(&mut self, rows: Vec<OutboxRow>, asked: usize, now: Millis) -> Vec<OutboxRow> {
        if rows.len() < asked {
            self.behind = false;
        }
        let mut ready = Vec::new();
        for row in rows {
            self.cursor = self.cursor.max(row.seq);
            self.read_from = self.read_from.max(row.seq);
            if !self.held.contains(&row.seq) {
                self.hold(row, now, &mut ready);
            }
        }
        ready
    }

    fn hold(&mut self, row: OutboxRow, now: Millis, ready: &mut Vec<OutboxRow>) {
        self.held.insert(row.seq);
        if row.due_at > now {
            self.retries.insert((row.due_at, row.seq), row);
        } else {
            ready.push(row);
        }
    }

    /// Retries due by `now`.
    pub(super) fn due(&mut self, now: Millis) -> Vec<OutboxRow> {
        let later = self.retries.split_off(&(now + 1, 0));
        std::mem::replace(&mut self.retries, later).into_values().collect()
    }

    pub(super) fn next_retry(&self) -> Option<Millis> {
        self.retries.keys().next().map(|(at, _)| *at)
    }

    /// An attempt's outcome is recorded (`kept`: the row was still in the table, not erased meanwhile): a retry
    /// waits for its time, anything else is let go.
    pub(super) fn recorded(&mut self, mut row: OutboxRow, outcome: &Outcome, kept: bool) {
        match outcome {
            Outcome::Retry { at, .. } if kept => {
                row.attempts += 1;
                row.due_at = *at;
                self.retries.insert((*at, row.seq), row);
            }
            Outcome::Defer { at } if kept => {
                row.due_at = *at;
                self.retries.insert((*at, row.seq), row);
            }
            _ => {
                self.held.remove(&row.seq);
            }
        }
    }

    /// Lets rows go unattempted: their partition's new owner delivers them.
    pub(super) fn let_go(&mut self, rows: &[OutboxRow]) {
        for row in rows {
            self.held.remove(&row.seq);
            self.retries.remove(&(row.due_at, row.seq));
        }
    }

    /// Forgets a profile's rows waiting for a retry (the processor has deleted them).
    pub(super) fn erased(&mut self, profile: ProfileId) {
        let held = &mut self.held;
        self.retries.retain(|_, row| {
            let keep = row.profile != profile;
            if !keep {
                held.remove(&row.seq);
            }
            keep
        });
    }
}

impl InFlight {
    /// Takes dead letters made pending again. A row still held (its death not yet confirmed here) is caught by
    /// the read this asks for.
    pub(super) fn replayed(&mut self, rows: Vec<OutboxRow>, now: Millis) -> Vec<OutboxRow> {
        let mut ready = Vec::new();
        for row in rows {
            self.read_from = self.read_from.min(row.seq.saturating_sub(1));
            self.behind = true;
            if !self.held.contains(&row.seq) && self.held.len() < self.capacity {
                self.hold(row, now, &mut ready);
            }
        }
        ready
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seq: u64, profile: u64, due_at: Millis) -> OutboxRow {
        OutboxRow {
            seq,
            key: format!("run-{seq}:tell:1"),
            profile: ProfileId(profile),
            connector: "webhook".into(),
            body: b"{}".to_vec(),
            created_at: 0,
            due_at,
            attempts: 0,
            partition: 0,
        }
    }

    fn seqs(rows: &[OutboxRow]) -> Vec<u64> {
        rows.iter().map(|r| r.seq).collect()
    }

    #[test]
    fn a_row_is_never_taken_twice_between_hand_offs_and_reads() {
        let mut held = InFlight::new(100);
        // At start it reads the table; the processor hands over row 3 meanwhile.
        assert_eq!(held.read_room(), Some(100));
        assert_eq!(seqs(&held.queued(vec![row(3, 1, 0)], 10)), [3]);
        // The read finds 1..=3 pending (3 is held already) and reaches the end.
        let ready = held.read(vec![row(1, 1, 0), row(2, 2, 50), row(3, 1, 0)], 100, 10);
        assert_eq!(seqs(&ready), [1], "2 waits for its retry, 3 is held");
        assert_eq!(held.read_room(), None, "caught up");
        // The hand-off of a row the read already took (queued before the read, handed over after) is ignored,
        // even once that row is recorded and let go.
        held.recorded(row(1, 1, 0), &Outcome::Done { result: "{}".into(), cost: None }, true);
        assert!(held.queued(vec![row(1, 1, 0)], 10).is_empty());
        assert!(held.queued(vec![row(3, 1, 0)], 10).is_empty(), "still held");
        assert_eq!(seqs(&held.queued(vec![row(4, 3, 0)], 10)), [4]);
        assert_eq!(held.due(49).len(), 0);
        assert_eq!(seqs(&held.due(50)), [2]);
    }

    #[test]
    fn what_does_not_fit_stays_in_the_table_and_is_read_back() {
        let mut held = InFlight::new(4);
        assert_eq!(held.read(Vec::new(), 4, 0).len(), 0);
        let ready = held.queued((1..=6).map(|s| row(s, s, 0)).collect(), 0);
        assert_eq!(seqs(&ready), [1, 2, 3, 4], "5 and 6 stay in the table");
        assert_eq!(held.read_room(), None, "no room to read into");
        for r in ready.into_iter().take(3) {
            held.recorded(r, &Outcome::Done { result: "{}".into(), cost: None }, true);
        }
        let room = held.read_room().expect("room again, and behind");
        assert_eq!(room, 3);
        // The table still has 4 (held) and 5, 6 pending after the cursor.
        let ready = held.read(vec![row(4, 4, 0), row(5, 5, 0), row(6, 6, 0)], room, 0);
        assert_eq!(seqs(&ready), [5, 6]);
        assert_eq!(held.read_room(), None, "a full read may not be the end: still behind, but no room");
        assert!(held.behind);
    }

    #[test]
    fn retries_wait_in_memory_and_erasure_or_deletion_lets_them_go() {
        let mut held = InFlight::new(10);
        held.read(Vec::new(), 10, 0);
        let ready = held.queued(vec![row(1, 7, 0), row(2, 8, 0), row(3, 7, 0)], 0);
        let mut ready = ready.into_iter();
        let (a, b, c) = (ready.next().unwrap(), ready.next().unwrap(), ready.next().unwrap());
        held.recorded(a, &Outcome::Retry { at: 1_000, error: "HTTP 503".into() }, true);
        held.recorded(b, &Outcome::Retry { at: 2_000, error: "HTTP 503".into() }, true);
        // Row 3's profile was erased while it was being delivered: its row is gone, so it is not retried.
        held.recorded(c, &Outcome::Retry { at: 1_000, error: "HTTP 503".into() }, false);
        assert_eq!(held.next_retry(), Some(1_000));
        held.erased(ProfileId(7));
        assert_eq!(held.next_retry(), Some(2_000));
        let due = held.due(2_000);
        assert_eq!(seqs(&due), [2]);
        assert_eq!((due[0].attempts, due[0].due_at), (1, 2_000));
        assert_eq!(held.held.len(), 1, "row 2 stays held while it is tried again");
        held.recorded(due.into_iter().next().unwrap(), &Outcome::Dead { error: "HTTP 400".into() }, true);
        assert!(held.held.is_empty());
    }

    #[test]
    fn replayed_dead_letters_are_taken_again_and_a_read_catches_what_was_still_held() {
        let mut held = InFlight::new(10);
        let ready = held.read(vec![row(1, 1, 0), row(2, 2, 0)], 10, 0);
        let mut ready = ready.into_iter();
        let (a, b) = (ready.next().unwrap(), ready.next().unwrap());
        held.recorded(a, &Outcome::Dead { error: "HTTP 400".into() }, true);
        assert!(held.queued(vec![row(1, 1, 0)], 0).is_empty(), "a stale hand-off is still ignored");
        // Row 1 is replayed: taken again. Row 2 is replayed before its death was confirmed here: not taken
        // twice, but the rows asks for a read from before it.
        assert_eq!(seqs(&held.replayed(vec![row(1, 1, 5), row(2, 2, 5)], 5)), [1]);
        assert_eq!(held.read_room(), Some(8));
        assert_eq!(held.read_from, 0);
        held.recorded(b, &Outcome::Dead { error: "HTTP 400".into() }, true);
        let ready = held.read(vec![row(1, 1, 5), row(2, 2, 5)], 8, 5);
        assert_eq!(seqs(&ready), [2], "row 1 is held; row 2, pending again, is taken once");
        assert_eq!((held.read_from, held.cursor), (2, 2));
    }

    #[test]
    fn deferred_rows_wait_without_counting_an_attempt() {
        let mut held = InFlight::new(10);
        held.read(Vec::new(), 10, 0);
        let r = held.queued(vec![row(1, 1, 0)], 0).pop().unwrap();
        held.recorded(r, &Outcome::Defer { at: 500 }, true);
        let due = held.due(500);
        assert_eq!((due[0].attempts, due[0].due_at), (0, 500));
    }
}
