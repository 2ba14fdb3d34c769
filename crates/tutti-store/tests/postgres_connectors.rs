//! The connectors' memory in Postgres beside SQLite's: the same writes give the same reads, keys in Vietnamese
//! and Chinese sort byte by byte in both, and two handles on one database (two workers) see each other's writes.

#![cfg(feature = "postgres")]

mod common;

use common::Schema;
use tutti_store::ConnectorMemory;
use tutti_store::postgres::connectors::PgConnectorMemory;
use tutti_store::postgres::pool::Pool;
use tutti_store::sqlite::{CONNECTORS_FILE, SqliteConnectorMemory};

/// Writes, then every read, as text for comparing.
fn exercise(memory: &dyn ConnectorMemory) -> Vec<String> {
    let keys = ["topic/bảo mật", "topic/Zalo", "topic/giá", "topic/数据安全", "topic/a", "topic/", "other/x"];
    for (n, key) in keys.iter().enumerate() {
        memory.put("trello", key, &format!("card-{n}"), n as i64).unwrap();
    }
    memory.put("trello", "topic/giá", "card-again", 9).unwrap();
    memory.put("asana", "topic/giá", "task-1", 9).unwrap();
    let mut reads = vec![format!("{:?}", memory.get("trello", "topic/giá").unwrap())];
    reads.push(format!("{:?}", memory.get("trello", "topic/none").unwrap()));
    reads.push(format!("{:?}", memory.scan("trello", "topic/", "", 100).unwrap()));
    let first_two = memory.scan("trello", "topic/", "", 2).unwrap();
    reads.push(format!("{:?}", memory.scan("trello", "topic/", &first_two[1].0, 100).unwrap()));
    reads.push(format!("{:?}", memory.scan("trello", "", "", 100).unwrap()));
    memory.remove("trello", &["topic/a".into(), "topic/数据安全".into(), "never/there".into()]).unwrap();
    memory.remove("trello", &[]).unwrap();
    reads.push(format!("{:?}", memory.scan("trello", "topic/", "", 100).unwrap()));
    reads.push(format!("{:?}", memory.scan("asana", "", "", 100).unwrap()));
    reads
}

#[test]
fn postgres_remembers_as_sqlite_does() {
    let schema = Schema::new();
    drop(schema.migrated());
    let pg = PgConnectorMemory::new(Pool::new(&schema.url(), 2).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteConnectorMemory::open(&dir.path().join(CONNECTORS_FILE)).unwrap();
    let (from_pg, from_sqlite) = (exercise(&pg), exercise(&sqlite));
    assert_eq!(from_pg, from_sqlite);
    // Byte order: upper case before lower, then the accented and Chinese keys.
    assert!(from_pg[2].find("topic/Zalo").unwrap() < from_pg[2].find("topic/a").unwrap(), "{}", from_pg[2]);
    assert!(from_pg[2].find("topic/giá").unwrap() < from_pg[2].find("topic/数据安全").unwrap(), "{}", from_pg[2]);
    assert!(!from_pg[5].contains("topic/a\""), "removed: {}", from_pg[5]);
}

#[test]
fn two_workers_share_one_memory() {
    let schema = Schema::new();
    drop(schema.migrated());
    let one = PgConnectorMemory::new(Pool::new(&schema.url(), 1).unwrap());
    let other = PgConnectorMemory::new(Pool::new(&schema.url(), 1).unwrap());
    assert_eq!(other.get("trello", "topic/bảo mật").unwrap(), None);
    one.put("trello", "topic/bảo mật", r#"{"id":"card-1","reports":1}"#, 1).unwrap();
    assert_eq!(other.get("trello", "topic/bảo mật").unwrap().as_deref(), Some(r#"{"id":"card-1","reports":1}"#));
    other.put("trello", "topic/bảo mật", r#"{"id":"card-1","reports":2}"#, 2).unwrap();
    assert_eq!(one.get("trello", "topic/bảo mật").unwrap().as_deref(), Some(r#"{"id":"card-1","reports":2}"#));
    one.remove("trello", &["topic/bảo mật".into()]).unwrap();
    assert_eq!(other.scan("trello", "", "", 10).unwrap(), vec![]);
}

#[test]
fn a_key_held_through_one_worker_is_held_for_the_other_until_let_go() {
    let schema = Schema::new();
    drop(schema.migrated());
    let one = PgConnectorMemory::new(Pool::new(&schema.url(), 1).unwrap());
    let other = PgConnectorMemory::new(Pool::new(&schema.url(), 1).unwrap());
    let held = one.try_hold("trello", "topic/giá").unwrap().expect("free at first");
    assert!(other.try_hold("trello", "topic/giá").unwrap().is_none(), "held by the first");
    assert!(other.try_hold("trello", "topic/数据安全").unwrap().is_some(), "another topic is free");
    assert!(other.try_hold("asana", "topic/giá").unwrap().is_some(), "so is the same topic of another connector");
    drop(held);
    assert!(other.try_hold("trello", "topic/giá").unwrap().is_some(), "let go");
}
