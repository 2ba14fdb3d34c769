//! The machine's Postgres for tests (127.0.0.1:5432, trust auth, database `test`; `.ci/run` starts it when it
//! is down): each test in a schema of its own.
#![allow(dead_code)]

use tutti_store::postgres::{Client, connect};

/// A schema of its own, dropped when the test ends.
pub struct Schema {
    pub name: String,
}

impl Schema {
    pub fn new() -> Schema {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("tutti_test_{}_{n}", std::process::id());
        let mut admin = Schema::admin();
        admin.batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}")).unwrap();
        Schema { name }
    }

    pub fn admin() -> Client {
        connect("host=127.0.0.1 port=5432 user=root dbname=test")
            .expect("Postgres on 127.0.0.1:5432 (trust auth, database `test`): `.ci/run` starts it when it is down")
    }

    /// The connection string of this schema.
    pub fn url(&self) -> String {
        format!("host=127.0.0.1 port=5432 user=root dbname=test options='-c search_path={}'", self.name)
    }

    pub fn client(&self) -> Client {
        connect(&self.url()).unwrap()
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let _ = Schema::admin().batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
    }
}
