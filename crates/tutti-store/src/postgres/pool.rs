//! A small pool of connections for the stores read from many threads at once (the API's readers): a
//! connection is taken for one call and put back after it, and one that failed is dropped, not put back.

use std::sync::Mutex;

use postgres::Client;

use crate::{Result, StoreError};

pub struct Pool {
    url: String,
    idle: Mutex<Vec<Client>>,
    /// Connections kept idle at most; more are made when many calls run at once, and closed after.
    keep: usize,
}

impl Pool {
    /// Connects once now, so a wrong address stops the start.
    pub fn new(url: &str, keep: usize) -> Result<Pool> {
        let first = super::connect(url)?;
        Ok(Pool { url: url.to_owned(), idle: Mutex::new(vec![first]), keep: keep.max(1) })
    }

    /// Runs `call` on a connection.
    pub fn with<T>(&self, call: impl FnOnce(&mut Client) -> Result<T>) -> Result<T> {
        let taken = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut client = match taken {
            Some(client) if !client.is_closed() => client,
            _ => super::connect(&self.url)?,
        };
        let result = call(&mut client);
        let broken = matches!(&result, Err(StoreError::Postgres(e)) if e.is_closed()) || client.is_closed();
        if !broken {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() < self.keep {
                idle.push(client);
            }
        }
        result
    }
}
