//! The event log on JetStream against a real NATS server, side by side with the SQLite log: the same appends
//! give the same outcomes, the same sequence numbers and the same events read back.

use std::sync::Arc;
use std::time::Duration;

use tutti_log::jetstream_log::{self, JetStreamLog, JetStreamReader, Link, StreamLayout};
use tutti_log::nats::Options;
use tutti_log::nats::testing::NatsServer;
use tutti_log::{HashPartitioner, Partitioner};
use tutti_store::sqlite::{SqliteEventLog, SqliteEventReader};
use tutti_store::{Appended, EventLog, EventReader, NewEvent, StoreError};

fn layout(partitions: u32) -> StreamLayout {
    StreamLayout { stream: "TUTTI".into(), prefix: "tutti.events".into(), partitions, replicas: 1 }
}

fn open(server: &NatsServer, partitions: u32) -> (Arc<Link>, JetStreamLog, JetStreamReader) {
    let link = Arc::new(Link::connect(Options::parse(&server.url(), "test").unwrap()).unwrap());
    jetstream_log::setup(&link, &layout(partitions), Duration::from_secs(3600)).unwrap();
    (link.clone(), JetStreamLog::new(link.clone(), layout(partitions)), JetStreamReader::new(link, layout(partitions)))
}

fn event(id: &str, client: bool, user: &str, received_at: i64) -> NewEvent {
    NewEvent {
        message_id: id.into(),
        client_message_id: client,
        received_at,
        body: format!(r#"{{"messageId":"{id}","userId":"{user}","event":"Đặt hàng 订单"}}"#).into_bytes(),
        routing_key: format!("u:{user}"),
    }
}

#[test]
fn the_log_on_jetstream_answers_as_the_sqlite_log_does() {
    let Some(server) = NatsServer::start() else { return };
    let (_link, mut bus, bus_reader) = open(&server, 8);
    let dir = tempfile::tempdir().unwrap();
    let mut sqlite = SqliteEventLog::open(&dir.path().join("events.db")).unwrap();
    let sqlite_reader = SqliteEventReader::open(&dir.path().join("events.db")).unwrap();

    // Rounds that repeat ids within a call, across calls and inside big groups (more than one atomic batch),
    // with made-up ids (never deduplicated) among them.
    let rounds: Vec<Vec<NewEvent>> = vec![
        (0..10).map(|i| event(&format!("a{i}"), true, &format!("user-{}", i % 3), 100 + i)).collect(),
        vec![event("a3", true, "user-0", 200), event("b1", true, "user-1", 201), event("b1", true, "user-1", 202)],
        (0..2500)
            .map(|i| match i % 500 {
                7 => event("a5", true, "user-2", 300 + i),
                9 => event("gen", false, "user-4", 300 + i),
                _ => event(&format!("c{i}"), true, &format!("user-{}", i % 40), 300 + i),
            })
            .collect(),
    ];
    for round in &rounds {
        let on_bus = bus.append(round).unwrap();
        let on_sqlite = sqlite.append(round).unwrap();
        assert_eq!(on_bus, on_sqlite);
    }
    assert_eq!(bus_reader.head().unwrap(), sqlite_reader.head().unwrap());
    assert_eq!(bus_reader.head().unwrap(), 10 + 1 + 2495);
    let read = |reader: &dyn EventReader| {
        let mut all = Vec::new();
        let mut after = 0;
        loop {
            let got = reader.read_after(after, 700).unwrap();
            let Some(last) = got.last() else { break };
            after = last.seq;
            all.extend(got.into_iter().map(|e| (e.seq, e.received_at, e.body)));
        }
        all
    };
    let everything = read(&bus_reader);
    assert_eq!(everything.len(), 2506);
    assert_eq!(everything, read(&sqlite_reader));
    let picked = [3, 2506, 11, 99_999];
    let by_seq = |reader: &dyn EventReader| -> Vec<(u64, Vec<u8>)> {
        reader.read_seqs(&picked).unwrap().into_iter().map(|e| (e.seq, e.body)).collect()
    };
    assert_eq!(by_seq(&bus_reader), by_seq(&sqlite_reader));
    assert_eq!(by_seq(&bus_reader).len(), 3);
    for after in [2506, u64::MAX - 1, u64::MAX] {
        assert!(bus_reader.read_after(after, 10).unwrap().is_empty());
    }

    // Erasure: the messages are gone from both kinds of read.
    assert_eq!(bus.delete(&[3, 11, 99_999]).unwrap(), 2);
    assert_eq!(bus_reader.read_seqs(&[3, 11, 12]).unwrap().iter().map(|e| e.seq).collect::<Vec<_>>(), [12]);
    assert_eq!(bus_reader.read_after(2, 3).unwrap().iter().map(|e| e.seq).collect::<Vec<_>>(), [4, 5, 6]);
}

#[test]
fn each_event_lands_on_its_routing_keys_partition_and_is_read_back_with_it() {
    let Some(server) = NatsServer::start() else { return };
    let (link, mut bus, reader) = open(&server, 5);
    let events: Vec<NewEvent> = (0..200).map(|i| event(&format!("e{i}"), true, &format!("u{}", i % 17), i)).collect();
    let seqs: Vec<u64> = bus.append(&events).unwrap().iter().map(|a| a.seq().unwrap()).collect();
    let stored = link.get().unwrap().get_all("TUTTI", &seqs).unwrap();
    let partitioner = HashPartitioner::new(5);
    let mut used = std::collections::BTreeSet::new();
    for (event, message) in events.iter().zip(stored) {
        let partition = partitioner.partition_of(event.routing_key.as_bytes());
        assert_eq!(message.unwrap().subject, format!("tutti.events.{partition}"));
        used.insert(partition);
    }
    assert_eq!(used.len(), 5, "17 users over 5 partitions use them all");
    // The reader says each event's partition, as stored, for a worker to pass over others' without parsing.
    let read: Vec<Option<u32>> = reader.read_after(0, 500).unwrap().iter().map(|e| e.partition).collect();
    let routed: Vec<Option<u32>> =
        events.iter().map(|e| Some(partitioner.partition_of(e.routing_key.as_bytes()))).collect();
    assert_eq!(read, routed);
    let layout = layout(5);
    assert_eq!(layout.partition_of_subject("tutti.events.4"), Some(4));
    for other in ["tutti.events.5", "tutti.events.", "tutti.eventsx.1", "other.1", "tutti.events.-1"] {
        assert_eq!(layout.partition_of_subject(other), None, "{other}");
    }
}

#[test]
fn the_partition_count_is_fixed_when_the_stream_is_made() {
    let Some(server) = NatsServer::start() else { return };
    let (link, _, _) = open(&server, 8);
    jetstream_log::setup(&link, &layout(8), Duration::from_secs(60)).unwrap();
    let Err(StoreError::Bus(why)) = jetstream_log::setup(&link, &layout(16), Duration::from_secs(60)) else {
        panic!("a second partition count was taken")
    };
    assert!(why.contains("set up with 8 partitions, not 16"), "{why}");
    let foreign = StreamLayout { prefix: "other".into(), ..layout(8) };
    assert!(jetstream_log::setup(&link, &foreign, Duration::from_secs(60)).is_err());
    // The duplicate window follows the configuration.
    let config = link.get().unwrap().stream_info("TUTTI").unwrap().unwrap().config;
    assert_eq!(config["duplicate_window"], 60_000_000_000u64);
}

#[test]
fn what_was_acknowledged_survives_a_killed_server_and_the_log_connects_again() {
    let Some(mut server) = NatsServer::start() else { return };
    let (_link, mut bus, reader) = open(&server, 4);
    let first: Vec<NewEvent> = (0..1200).map(|i| event(&format!("k{i}"), true, "u", i)).collect();
    assert!(bus.append(&first).unwrap().iter().all(|a| matches!(a, Appended::Stored(_))));
    server.kill();
    let failed = bus.append(&[event("during", true, "u", 1)]);
    assert!(matches!(failed, Err(StoreError::Bus(_))), "{failed:?}");
    assert!(reader.head().is_err());
    server.restart();
    // The same objects, without being made again: the link connects at the next call.
    assert_eq!(reader.head().unwrap(), 1200);
    assert_eq!(
        bus.append(&[event("k5", true, "u", 1), event("after", true, "u", 2)]).unwrap(),
        [Appended::Duplicate, Appended::Stored(1201)]
    );
    assert_eq!(reader.read_after(0, 5000).unwrap().len(), 1201);
}

#[test]
fn a_message_id_cannot_smuggle_headers_into_the_batch() {
    let Some(server) = NatsServer::start() else { return };
    let (_link, mut bus, reader) = open(&server, 4);
    // A client's messageId is any text: here one that would end its header and commit the batch early, in a
    // group with other clients' events.
    let hostile = "x\r\nNats-Batch-Commit: 1\r\n\r\n";
    let mut group: Vec<NewEvent> = (0..5).map(|i| event(&format!("ok-{i}"), true, "a", i)).collect();
    group.insert(2, event(hostile, true, "b", 9));
    group.push(event("đơn hàng 订单 #1", true, "c", 10));
    let outcomes = bus.append(&group).unwrap();
    assert!(outcomes.iter().all(|o| matches!(o, Appended::Stored(_))), "{outcomes:?}");
    assert_eq!(reader.read_after(0, 100).unwrap().len(), 7);
    // The same ids are still recognised when sent again.
    let again = bus.append(&[event(hostile, true, "b", 11), event("đơn hàng 订单 #1", true, "c", 12)]).unwrap();
    assert_eq!(again, [Appended::Duplicate, Appended::Duplicate]);
}
