//! The NATS client against a real NATS server with JetStream (nats/testing.rs starts one per test).

use std::time::Duration;

use serde_json::json;
use tutti_log::nats::jetstream::Publish;
use tutti_log::nats::testing::NatsServer;
use tutti_log::nats::{Connection, JetStream, NatsError, Options, Request};

fn connect(server: &NatsServer) -> JetStream {
    JetStream::connect(&Options::parse(&server.url(), "test").unwrap()).unwrap()
}

fn stream(js: &JetStream) {
    js.create_stream(&json!({
        "name": "T", "subjects": ["t.>"], "storage": "file", "num_replicas": 1, "allow_direct": true,
        "duplicate_window": 60_000_000_000u64,
    }))
    .unwrap();
}

#[test]
fn published_messages_are_acknowledged_deduplicated_and_read_back() {
    let Some(server) = NatsServer::start() else { return };
    let js = connect(&server);
    assert!(js.stream_info("T").unwrap().is_none());
    stream(&js);
    let bodies: Vec<String> = (0..300).map(|i| format!("{{\"i\":{i}}}")).collect();
    let subjects: Vec<String> = (0..300).map(|i| format!("t.{}", i % 3)).collect();
    let ids: Vec<String> = (0..300).map(|i| format!("m-{}", i % 250)).collect();
    let messages: Vec<Publish<'_>> = (0..300)
        .map(|i| Publish {
            subject: &subjects[i],
            message_id: Some(&ids[i]),
            headers: &[("Tutti-Received-At", "42")],
            payload: bodies[i].as_bytes(),
        })
        .collect();
    let acks: Vec<_> = js.publish_all(&messages).unwrap().into_iter().map(Result::unwrap).collect();
    // 250 distinct ids: the last 50 repeat the first 50 and get their sequence numbers back.
    assert_eq!(acks.iter().filter(|a| !a.duplicate).count(), 250);
    assert_eq!(acks[250].seq, acks[0].seq);
    assert!(acks[250].duplicate);
    assert_eq!(acks[249].seq, 250);
    assert_eq!(js.stream_info("T").unwrap().unwrap().state.last_seq, 250);

    let got = js.get_all("T", &[1, 250, 251, 7]).unwrap();
    assert_eq!(got[0].as_ref().unwrap().data, br#"{"i":0}"#);
    assert_eq!(got[0].as_ref().unwrap().header("tutti-received-at"), Some("42"));
    assert_eq!(got[0].as_ref().unwrap().subject, "t.0");
    assert_eq!(got[1].as_ref().unwrap().seq, 250);
    assert!(got[2].is_none());
    assert_eq!(got[3].as_ref().unwrap().seq, 7);

    // Batches on one subject, and on all, in sequence order.
    let one = js.batch_from("T", 1, "t.1", 1000, 1 << 20).unwrap();
    assert_eq!(one.len(), 83);
    assert!(one.iter().all(|m| m.subject == "t.1") && one.windows(2).all(|w| w[0].seq < w[1].seq));
    let all = js.batch_from("T", 101, "t.>", 100, 1 << 20).unwrap();
    assert_eq!(all.iter().map(|m| m.seq).collect::<Vec<_>>(), (101..=200).collect::<Vec<_>>());
    assert!(js.batch_from("T", 251, "t.>", 100, 1 << 20).unwrap().is_empty());

    assert!(js.delete("T", 7).unwrap());
    assert!(!js.delete("T", 7).unwrap());
    assert!(js.get_all("T", &[7]).unwrap()[0].is_none());
    let around = js.batch_from("T", 6, "t.>", 3, 1 << 20).unwrap();
    assert_eq!(around.iter().map(|m| m.seq).collect::<Vec<_>>(), [6, 8, 9]);
}

#[test]
fn a_killed_server_fails_calls_and_keeps_what_it_acknowledged() {
    let Some(mut server) = NatsServer::start() else { return };
    let js = connect(&server);
    stream(&js);
    let acks =
        js.publish_all(&[Publish { subject: "t.a", message_id: Some("x"), headers: &[], payload: b"kept" }]).unwrap();
    assert_eq!(acks[0].as_ref().unwrap().seq, 1);
    server.kill();
    let failed = js.publish_all(&[Publish { subject: "t.a", message_id: None, headers: &[], payload: b"lost" }]);
    assert!(matches!(failed, Err(NatsError::Lost(_))), "{failed:?}");
    assert!(js.connection().closed().is_some());
    server.restart();
    let js = connect(&server);
    let kept = js.get_all("T", &[1]).unwrap();
    assert_eq!(kept[0].as_ref().unwrap().data, b"kept");
    // The duplicate window outlives the restart.
    let again = js.publish_all(&[Publish { subject: "t.a", message_id: Some("x"), headers: &[], payload: b"kept" }]);
    assert!(again.unwrap()[0].as_ref().unwrap().duplicate);
}

#[test]
fn core_requests_subscriptions_and_refusals() {
    let Some(server) = NatsServer::start() else { return };
    let options = Options::parse(&server.url(), "test").unwrap();
    let a = Connection::connect(&options).unwrap();
    let b = Connection::connect(&options).unwrap();
    let (_, inbox) = b.subscribe("echo").unwrap();
    b.flush(Duration::from_secs(5)).unwrap();
    a.publish("echo", &[("H", "1")], b"ping").unwrap();
    let got = inbox.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!((got.payload.as_slice(), got.header("h")), (&b"ping"[..], Some("1")));
    // Nobody listens: the server says so at once instead of letting the request time out.
    let none = a.request(Request::new("nobody.here", b""), Duration::from_secs(5)).unwrap();
    assert_eq!(none.status, Some(503));
    // Bigger than the server's max_payload (1 MB): refused before anything is sent.
    let big = vec![b'x'; 2 << 20];
    assert!(matches!(a.publish("echo", &[], &big), Err(NatsError::TooLarge { .. })));
    assert!(matches!(a.publish("not a subject", &[], b""), Err(NatsError::Protocol(_))));
    // Still usable after the refusals.
    a.flush(Duration::from_secs(5)).unwrap();
    // The servers of a list are tried in order: a dead first one is passed over, and when all are dead the
    // error names each.
    let listed = Options::parse(&format!("nats://127.0.0.1:1,{}", server.url()), "t").unwrap();
    assert!(Connection::connect(&listed).is_ok());
    let dead = Options::parse("nats://127.0.0.1:1,nats://127.0.0.1:2", "t").unwrap();
    let Err(NatsError::Connect(why)) = Connection::connect(&dead) else { panic!("connected to nothing") };
    assert!(why.contains("127.0.0.1:1:") && why.contains("127.0.0.1:2:"), "{why}");
}

#[test]
fn atomic_batches_store_whole_and_in_order_or_not_at_all() {
    let Some(server) = NatsServer::start() else { return };
    let js = connect(&server);
    js.create_stream(&json!({
        "name": "T", "subjects": ["t.>"], "storage": "file", "num_replicas": 1, "allow_direct": true,
        "allow_atomic": true, "duplicate_window": 60_000_000_000u64,
    }))
    .unwrap();
    js.publish_all(&[Publish { subject: "t.0", message_id: Some("old"), headers: &[], payload: b"0" }]).unwrap();
    let ids: Vec<String> = (0..1500).map(|i| format!("m{i}")).collect();
    let bodies: Vec<String> = (0..1500).map(|i| i.to_string()).collect();
    let subjects: Vec<String> = (0..1500).map(|i| format!("t.{}", i % 7)).collect();
    let make = |i: usize| Publish {
        subject: &subjects[i],
        message_id: Some(&ids[i]),
        headers: &[],
        payload: bodies[i].as_bytes(),
    };
    let first: Vec<Publish<'_>> = (0..1000).map(make).collect();
    let second: Vec<Publish<'_>> = (1000..1500).map(make).collect();
    let with_old =
        [make(1499 - 1), Publish { subject: "t.0", message_id: Some("old"), headers: &[], payload: b"again" }];
    let acks = js.publish_atomic(&[&first, &second, &with_old[..1], &with_old]).unwrap();
    let first_ack = acks[0].as_ref().unwrap();
    assert_eq!((first_ack.seq, first_ack.count), (1001, 1000));
    assert_eq!(acks[1].as_ref().unwrap().seq, 1501);
    // A batch of one message that repeats an id is refused whole, like one holding an id stored before.
    for refused in &acks[2..] {
        assert!(matches!(refused, Err(NatsError::Api { err_code: 10201, .. })), "{refused:?}");
    }
    let stored = js.batch_from("T", 2, "t.>", 2000, 8 << 20).unwrap();
    assert_eq!(stored.len(), 1500);
    for (i, message) in stored.iter().enumerate() {
        assert_eq!(
            (message.seq, message.data.as_slice(), message.subject.as_str()),
            (i as u64 + 2, bodies[i].as_bytes(), subjects[i].as_str())
        );
    }
    // Ids stored in a batch are remembered like any other.
    let again = js.publish_all(&[make(5)]).unwrap();
    assert_eq!(
        again[0].as_ref().unwrap(),
        &tutti_log::nats::jetstream::PubAck { stream: "T".into(), seq: 7, duplicate: true, count: 0 }
    );
}
