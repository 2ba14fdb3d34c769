//! An event acknowledged with 200 survives SIGKILL: concurrent clients, a kill mid-stream, a restart, and every
//! acknowledged event is in the log exactly once.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::Server;
use serde_json::json;

#[test]
fn every_acknowledged_event_survives_kill_9_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_in(dir.path(), &[]);
    let url = server.url.clone();
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (enough, enough_rx) = std::sync::mpsc::channel::<()>();

    let clients: Vec<_> = (0..6)
        .map(|client| {
            let (url, acked, count, stop, enough) = (url.clone(), acked.clone(), count.clone(), stop.clone(), enough.clone());
            std::thread::spawn(move || {
                let agent = common::agent();
                let auth = Server::basic_auth();
                let mut i = 0usize;
                while !stop.load(Ordering::Relaxed) && i < 100_000 {
                    // Half the clients send batches of 10, half single events.
                    let ids: Vec<String> = (0..if client % 2 == 0 { 10 } else { 1 }).map(|k| format!("c{client}-{i}-{k}")).collect();
                    let (path, body) = if ids.len() == 1 {
                        ("/v1/track", json!({"userId": format!("user-{client}"), "event": "Tick", "messageId": ids[0]}))
                    } else {
                        let batch: Vec<_> = ids
                            .iter()
                            .map(|id| json!({"type": "track", "anonymousId": format!("anon-{client}"), "event": "Tock", "messageId": id}))
                            .collect();
                        ("/v1/batch", json!({"batch": batch}))
                    };
                    let sent = agent
                        .post(format!("{url}{path}"))
                        .header("Authorization", &auth)
                        .send(body.to_string().as_bytes());
                    match sent {
                        Ok(response) if response.status() == 200 => {
                            let n = ids.len();
                            acked.lock().unwrap().extend(ids);
                            if count.fetch_add(n, Ordering::SeqCst) + n >= 3000 {
                                let _ = enough.send(());
                            }
                        }
                        Ok(response) => panic!("unexpected status {}", response.status()),
                        Err(_) => return, // the server is gone
                    }
                    i += 1;
                }
            })
        })
        .collect();

    enough_rx.recv().expect("clients reached 3000 acknowledged events");
    server.kill9();
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().expect("client thread");
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 3000);

    let server = Server::start_in(dir.path(), &[]);
    let mut seen: HashMap<String, usize> = HashMap::new();
    for e in server.all_events() {
        *seen.entry(e["event"]["messageId"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    let missing: Vec<&String> = acked.iter().filter(|id| !seen.contains_key(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged events lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let doubled: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "events stored twice: {doubled:?}");

    // The profiles caught up with the recovered log too: nothing processed twice.
    let (_, profile) = server.profile("user_id:user-1");
    let ticks = seen.keys().filter(|id| id.starts_with("c1-")).count() as u64;
    assert_eq!(profile["event_counts"]["Tick"].as_u64(), Some(ticks));
}
