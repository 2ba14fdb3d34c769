//! The conversations store on Postgres beside SQLite's: the same imports, edits, erasures and saved results give
//! the same answers; and two workers on one database see each other's conversations, and a mining read on one
//! before a change through the other is not saved.

use tutti_conversations::store::{CONVERSATIONS_FILE, ConversationStore, PgConversationTables, TopicEdit};
use tutti_conversations::synth::{self, Shape};
use tutti_store::postgres::{connect, pool::Pool};

const ADMIN: &str = "host=127.0.0.1 port=5432 user=root dbname=test";

/// A schema of its own in the machine's Postgres (`.ci/run` starts it when it is down), dropped at the end.
struct Schema(String);

impl Schema {
    fn new(tag: &str) -> Schema {
        let name = format!("tutti_conversations_{tag}_{}", std::process::id());
        let mut admin = connect(ADMIN).expect("Postgres on 127.0.0.1:5432 (trust auth, database `test`)");
        admin.batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}")).unwrap();
        let schema = Schema(name);
        tutti_store::postgres::migrate::migrate(&mut connect(&schema.url()).unwrap()).unwrap();
        schema
    }

    fn url(&self) -> String {
        format!("{ADMIN} options='-c search_path={}'", self.0)
    }

    fn store(&self) -> ConversationStore {
        ConversationStore::on(Box::new(PgConversationTables::new(Pool::new(&self.url(), 1).unwrap())))
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        if let Ok(mut admin) = connect(ADMIN) {
            let _ = admin.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.0));
        }
    }
}

fn edit(topic: &str, label: Option<&str>, merged: Option<&str>) -> TopicEdit {
    TopicEdit {
        topic: topic.into(),
        label: label.map(str::to_owned),
        label_en: None,
        merged_into: merged.map(str::to_owned),
        split_on: None,
        by: "mai@shop.vn".into(),
        at: 1,
    }
}

/// Every write and read, as JSON, for comparing two stores.
fn exercise(store: &ConversationStore) -> serde_json::Value {
    let shape = Shape { conversations: 12, turns: 4, seed: 7, start: 1_790_000_000_000, weeks: 1, noise: 0 };
    let (mut conversations, _) = synth::generate(&shape);
    conversations[5].started_at = None;
    conversations[6].id = "cuộc-gọi-数据".into();
    let mut out = vec![serde_json::to_value(store.put(&conversations).unwrap()).unwrap()];
    out.push(serde_json::to_value(store.put(&conversations).unwrap()).unwrap());
    conversations[3].turns[0].text.push_str(" (đã sửa)");
    out.push(serde_json::to_value(store.put(&conversations[..5]).unwrap()).unwrap());
    let ids: Vec<String> = store.all().unwrap().into_iter().map(|c| c.id).collect();
    out.push(serde_json::to_value(ids).unwrap());
    out.push(serde_json::to_value(store.count().unwrap()).unwrap());
    out.push(serde_json::to_value(store.get(&conversations[6].id).unwrap()).unwrap());
    let person = [("email".to_owned(), "  BUYER3@example.com ".to_owned())];
    out.push(serde_json::to_value(store.of_person(&person).unwrap()).unwrap());

    store.put_edit(&edit("t1", Some("Giá"), None)).unwrap();
    store.put_edit(&edit("t1", None, Some("t2"))).unwrap();
    store.put_edit(&edit("安全", Some("数据安全"), None)).unwrap();
    out.push(serde_json::to_value(store.edits().unwrap()).unwrap());

    let read = store.for_mining().unwrap();
    out.push(serde_json::json!([read.conversations.len(), read.edits.len()]));
    out.push(store.put_snapshot("mined", "{\"vi\": \"chủ đề\"}", read.generation).unwrap().into());
    out.push(serde_json::to_value(store.snapshot("mined").unwrap()).unwrap());
    out.push(store.erase_person(&person).unwrap().into());
    out.push(serde_json::to_value(store.snapshot("mined").unwrap()).unwrap());
    out.push(store.put_snapshot("mined", "{}", read.generation).unwrap().into());
    out.push(serde_json::to_value(store.count().unwrap()).unwrap());
    out.push(store.erase_person(&person).unwrap().into());
    serde_json::Value::Array(out)
}

#[test]
fn postgres_keeps_conversations_as_sqlite_does() {
    let schema = Schema::new("same");
    let dir = tempfile::tempdir().unwrap();
    let sqlite = ConversationStore::open(&dir.path().join(CONVERSATIONS_FILE)).unwrap();
    let (from_pg, from_sqlite) = (exercise(&schema.store()), exercise(&sqlite));
    assert_eq!(from_pg, from_sqlite);
    // What both said, checked by hand so that two equally wrong stores do not pass.
    assert_eq!(from_pg[0], serde_json::json!({"inserted": 12, "updated": 0, "unchanged": 0}));
    assert_eq!(from_pg[1]["unchanged"], 12);
    assert_eq!(from_pg[2], serde_json::json!({"inserted": 0, "updated": 1, "unchanged": 4}));
    assert!(from_pg[3].as_array().unwrap().iter().any(|id| id == "cuộc-gọi-数据"), "{}", from_pg[3]);
    assert_eq!(from_pg[6].as_array().map(Vec::len), Some(1), "found by a differently written email");
    assert_eq!(from_pg[7][0]["label"], "Giá");
    assert_eq!(from_pg[7][0]["merged_into"], "t2", "layered");
    assert_eq!(from_pg[9], true);
    assert_eq!(from_pg[11], 1);
    assert!(from_pg[12].is_null(), "an erasure empties the saved results");
    assert_eq!(from_pg[13], false, "a result read before the erasure is not saved");
    assert_eq!(from_pg[14][0], 11);
}

#[test]
fn a_conversation_without_a_start_comes_first_as_in_sqlite() {
    let schema = Schema::new("order");
    let shape = Shape { conversations: 4, turns: 2, seed: 3, start: 1_790_000_000_000, weeks: 1, noise: 0 };
    let (mut conversations, _) = synth::generate(&shape);
    conversations[2].started_at = None;
    let without = conversations[2].id.clone();
    let store = schema.store();
    store.put(&conversations).unwrap();
    assert_eq!(store.all().unwrap()[0].id, without);
    let dir = tempfile::tempdir().unwrap();
    let sqlite = ConversationStore::open(&dir.path().join(CONVERSATIONS_FILE)).unwrap();
    sqlite.put(&conversations).unwrap();
    assert_eq!(sqlite.all().unwrap()[0].id, without);
}

#[test]
fn two_workers_share_conversations_and_a_stale_mining_is_not_saved() {
    let schema = Schema::new("shared");
    let (one, other) = (schema.store(), schema.store());
    let shape = Shape { conversations: 6, turns: 3, seed: 2, start: 1_790_000_000_000, weeks: 1, noise: 0 };
    let (mut conversations, _) = synth::generate(&shape);
    one.put(&conversations).unwrap();
    assert_eq!(other.count().unwrap().0, 6, "imported through one, read through the other");
    let read = one.for_mining().unwrap();
    conversations[0].turns[0].text.push_str(" (sửa)");
    other.put(&conversations[..1]).unwrap();
    assert!(!one.put_snapshot("mined", "{}", read.generation).unwrap(), "changed through the other meanwhile");
    let fresh = one.for_mining().unwrap();
    assert!(one.put_snapshot("mined", "{}", fresh.generation).unwrap());
    let person: Vec<(String, String)> = conversations[0].customer.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(other.erase_person(&person).unwrap(), 1, "erased through either");
    assert_eq!(one.get(&conversations[0].id).unwrap(), None);
    assert_eq!(one.snapshot("mined").unwrap(), None);
}
