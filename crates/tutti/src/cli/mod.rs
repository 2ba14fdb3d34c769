//! The commands, one file per family; they share the admin client and printer in `client.rs`.

pub(crate) mod analytics;
pub(crate) mod approvals;
pub(crate) mod audit;
pub(crate) mod client;
pub(crate) mod connectors;
pub(crate) mod conversations;
pub(crate) mod dead_letters;
pub(crate) mod flows;
pub(crate) mod insights;
pub(crate) mod plan;
pub(crate) mod profiles;
pub(crate) mod review;
pub(crate) mod serve;
pub(crate) mod users;

/// A pool of one connection on the Postgres database the workers share (`--postgres`), its schema migrated: for
/// the commands that read or write the stores directly (`tutti insights`, `tutti conversations`).
pub(crate) fn shared_database(url: &str) -> anyhow::Result<tutti_store::postgres::pool::Pool> {
    use anyhow::Context as _;
    use tutti_store::postgres as pg;
    let mut client = pg::connect(url).with_context(|| format!("connecting to {}", pg::describe(url)))?;
    pg::migrate::migrate(&mut client)?;
    Ok(pg::pool::Pool::new(url, 1)?)
}
