//! A small pool of connections for the stores read from many threads at once (the API's readers): a
//! connection is taken for one call and put back after it, and one that failed is dropped, not put back.

use std::sync::Mutex;

use postgres::Client;

/// How long a check of a connection after trouble may take.
const CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

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

    /// The connection string it connects with.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Runs `call` on a connection. Safe to call from an async task: see [`outside_async`].
    pub fn with<T: Send>(&self, call: impl FnOnce(&mut Client) -> Result<T> + Send) -> Result<T> {
        outside_async(|| self.with_here(call))
    }

    fn with_here<T>(&self, call: impl FnOnce(&mut Client) -> Result<T>) -> Result<T> {
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

/// Closing a connection blocks too, and the last handle on a pool may go in an async task.
impl Drop for Pool {
    fn drop(&mut self) {
        let idle = std::mem::take(&mut *self.idle.lock().unwrap_or_else(|e| e.into_inner()));
        outside_async(move || drop(idle));
    }
}

/// Runs blocking database work where blocking is allowed. The `postgres` client drives a runtime of its own and
/// panics (aborting the process) when it blocks on a thread that belongs to another runtime, which a store
/// method called from an HTTP handler would be; `block_in_place` does not lift that check. Inside a runtime the
/// work runs on a short-lived thread of its own (tens of microseconds, against a round trip to the database);
/// elsewhere (the engine's own threads), right here.
pub fn outside_async<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return work();
    }
    std::thread::scope(|scope| match scope.spawn(work).join() {
        Ok(done) => done,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

thread_local! {
    /// Errors on this thread that were not the server's answer to a statement (a lost connection among them).
    static TROUBLE: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Counts `e` when it may mean a lost connection: anything but an error the server reported.
pub(crate) fn noticed(e: &postgres::Error) {
    if e.as_db_error().is_none() {
        TROUBLE.with(|t| t.set(t.get() + 1));
    }
}

/// One connection kept by one user on one thread (the processor's store, the dispatcher's outbox), made again
/// before the next call once it was lost (the server restarted), when it knows where to connect.
///
/// The `postgres` client does not always know that its connection is gone (it learns it only while driving
/// a call), so the connection is checked (`is_valid`) before its next use whenever a call on this thread failed
/// other than by the server's answer since the last check: a round trip only after trouble.
pub struct Reconnecting {
    client: Client,
    url: Option<String>,
    /// The thread's trouble count as of the last check.
    checked: u64,
}

impl Reconnecting {
    /// A connection that is not made again: once lost, every call fails.
    pub fn once(client: Client) -> Reconnecting {
        Reconnecting { client, url: None, checked: TROUBLE.with(std::cell::Cell::get) }
    }

    pub fn connect(url: &str) -> Result<Reconnecting> {
        let client = super::connect(url)?;
        Ok(Reconnecting { client, url: Some(url.to_owned()), checked: TROUBLE.with(std::cell::Cell::get) })
    }

    /// The connection as it is (a lost one fails the call).
    pub fn current(&mut self) -> &mut Client {
        &mut self.client
    }

    /// The connection, made again first if it was lost.
    pub fn get(&mut self) -> Result<&mut Client> {
        let Some(url) = &self.url else { return Ok(&mut self.client) };
        let trouble = TROUBLE.with(std::cell::Cell::get);
        if trouble != self.checked || self.client.is_closed() {
            if self.client.is_closed() || self.client.is_valid(CHECK_TIMEOUT).is_err() {
                self.client = super::connect(url)?;
            }
            self.checked = TROUBLE.with(std::cell::Cell::get);
        }
        Ok(&mut self.client)
    }
}

impl From<Client> for Reconnecting {
    fn from(client: Client) -> Reconnecting {
        Reconnecting::once(client)
    }
}
