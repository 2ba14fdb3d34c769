//! Creatives, their tags and their daily performance in Postgres (`creatives`, `creative_tags`,
//! `creative_performance`, `insight_snapshots`), shared by every worker: an import through one worker's API is
//! what the others' insights read. The same answers as `sqlite/creatives.rs`, whose text forms of owners, tag
//! sources and days it shares.

use std::collections::{BTreeMap, HashMap};

use postgres::GenericClient;
use tutti_core::creative::{Creative, Date, Performance, Tag, Totals};

use super::pool::Pool;
use crate::sqlite::creatives::{date_of, owner_of, owner_text, source_of, source_text};
use crate::{Changes, CreativeStore, Result};

pub struct PgCreativeStore {
    pool: Pool,
}

impl PgCreativeStore {
    /// On a migrated database.
    pub fn new(pool: Pool) -> PgCreativeStore {
        PgCreativeStore { pool }
    }
}

/// Inserts a row, or updates it where it differs: which of the two happened (or neither) is counted.
fn upsert(
    tx: &mut postgres::Transaction<'_>,
    insert: &postgres::Statement,
    update: &postgres::Statement,
    values: &[&(dyn postgres::types::ToSql + Sync)],
    changes: &mut Changes,
) -> Result<()> {
    if tx.execute(insert, values)? == 1 {
        changes.inserted += 1;
    } else if tx.execute(update, values)? == 1 {
        changes.updated += 1;
    } else {
        changes.unchanged += 1;
    }
    Ok(())
}

/// A manual tag is replaced only by another manual one.
fn write_tags(client: &mut impl GenericClient, creative: &str, tags: &BTreeMap<String, Tag>) -> Result<()> {
    if tags.is_empty() {
        return Ok(());
    }
    let stmt = client.prepare(
        "INSERT INTO creative_tags (creative, name, value, confidence, source, why) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (creative, name) DO UPDATE SET
             value = excluded.value, confidence = excluded.confidence, source = excluded.source, why = excluded.why
         WHERE creative_tags.source <> 'manual' OR excluded.source = 'manual'",
    )?;
    for (name, tag) in tags {
        client.execute(&stmt, &[&creative, name, &tag.value, &tag.confidence, &source_text(tag.source), &tag.why])?;
    }
    Ok(())
}

fn read_tags(client: &mut postgres::Client, creative: Option<&str>) -> Result<HashMap<String, BTreeMap<String, Tag>>> {
    let rows = client.query(
        "SELECT creative, name, value, confidence, source, why FROM creative_tags
         WHERE $1::text IS NULL OR creative = $1",
        &[&creative],
    )?;
    let mut out: HashMap<String, BTreeMap<String, Tag>> = HashMap::new();
    for r in rows {
        let tag = Tag { value: r.get(2), confidence: r.get(3), source: source_of(r.get(4)), why: r.get(5) };
        out.entry(r.get(0)).or_default().insert(r.get(1), tag);
    }
    Ok(out)
}

const CREATIVE_COLUMNS: &str =
    "id, campaign, channel, language, headline, body, call_to_action, landing_url, owner, launched";

fn creative_of(r: &postgres::Row) -> Result<Creative> {
    let launched: Option<&str> = r.get(9);
    Ok(Creative {
        id: r.get(0),
        campaign: r.get(1),
        channel: r.get(2),
        language: r.get(3),
        headline: r.get(4),
        body: r.get(5),
        call_to_action: r.get(6),
        landing_url: r.get(7),
        owner: owner_of(r.get(8)),
        launched: launched.map(date_of).transpose()?,
        tags: BTreeMap::new(),
    })
}

impl CreativeStore for PgCreativeStore {
    fn put_creatives(&self, creatives: &[Creative]) -> Result<Changes> {
        self.pool.with(|client| {
            let mut tx = client.transaction()?;
            let insert = tx.prepare(
                "INSERT INTO creatives (id, campaign, channel, language, headline, body, call_to_action,
                 landing_url, owner, launched) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                 ON CONFLICT (id) DO NOTHING",
            )?;
            let update = tx.prepare(
                "UPDATE creatives SET campaign = $2, channel = $3, language = $4, headline = $5, body = $6,
                 call_to_action = $7, landing_url = $8, owner = $9, launched = $10
                 WHERE id = $1 AND (campaign, channel, language, headline, body, call_to_action, landing_url, owner,
                 launched) IS DISTINCT FROM ($2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )?;
            let mut changes = Changes::default();
            for c in creatives {
                let (owner, launched) = (owner_text(&c.owner), c.launched.map(|d| d.to_string()));
                let values: [&(dyn postgres::types::ToSql + Sync); 10] = [
                    &c.id,
                    &c.campaign,
                    &c.channel,
                    &c.language,
                    &c.headline,
                    &c.body,
                    &c.call_to_action,
                    &c.landing_url,
                    &owner,
                    &launched,
                ];
                upsert(&mut tx, &insert, &update, &values, &mut changes)?;
                write_tags(&mut tx, &c.id, &c.tags)?;
            }
            tx.commit()?;
            Ok(changes)
        })
    }

    fn put_performance(&self, rows: &[Performance]) -> Result<Changes> {
        self.pool.with(|client| {
            let mut tx = client.transaction()?;
            let insert = tx.prepare(
                "INSERT INTO creative_performance (creative, day, impressions, clicks, conversions, spend_micros,
                 revenue_micros) VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (creative, day) DO NOTHING",
            )?;
            let update = tx.prepare(
                "UPDATE creative_performance SET impressions = $3, clicks = $4, conversions = $5, spend_micros = $6,
                 revenue_micros = $7
                 WHERE creative = $1 AND day = $2
                 AND (impressions, clicks, conversions, spend_micros, revenue_micros)
                     IS DISTINCT FROM ($3, $4, $5, $6, $7)",
            )?;
            let mut changes = Changes::default();
            for row in rows {
                let n = &row.numbers;
                let day = row.date.to_string();
                let counts = [n.impressions, n.clicks, n.conversions].map(|c| c.min(i64::MAX as u64) as i64);
                let values: [&(dyn postgres::types::ToSql + Sync); 7] =
                    [&row.creative, &day, &counts[0], &counts[1], &counts[2], &n.spend_micros, &n.revenue_micros];
                upsert(&mut tx, &insert, &update, &values, &mut changes)?;
            }
            tx.commit()?;
            Ok(changes)
        })
    }

    fn put_tags(&self, creative: &str, tags: &BTreeMap<String, Tag>) -> Result<()> {
        self.pool.with(|client| write_tags(client, creative, tags))
    }

    fn clear_manual_tag(&self, creative: &str, name: &str) -> Result<bool> {
        self.pool.with(|client| {
            let n = client.execute(
                "DELETE FROM creative_tags WHERE creative = $1 AND name = $2 AND source = 'manual'",
                &[&creative, &name],
            )?;
            Ok(n > 0)
        })
    }

    fn creatives(&self) -> Result<Vec<Creative>> {
        self.pool.with(|client| {
            let mut tags = read_tags(client, None)?;
            let rows = client.query(&format!("SELECT {CREATIVE_COLUMNS} FROM creatives ORDER BY id"), &[])?;
            rows.iter()
                .map(|r| {
                    let mut c = creative_of(r)?;
                    c.tags = tags.remove(&c.id).unwrap_or_default();
                    Ok(c)
                })
                .collect()
        })
    }

    fn creative(&self, id: &str) -> Result<Option<Creative>> {
        if id.contains('\0') {
            // Postgres's text cannot hold it, so no creative has it.
            return Ok(None);
        }
        self.pool.with(|client| {
            let Some(row) =
                client.query_opt(&format!("SELECT {CREATIVE_COLUMNS} FROM creatives WHERE id = $1"), &[&id])?
            else {
                return Ok(None);
            };
            let mut c = creative_of(&row)?;
            c.tags = read_tags(client, Some(id))?.remove(id).unwrap_or_default();
            Ok(Some(c))
        })
    }

    fn totals(&self, from: Option<Date>, to: Option<Date>) -> Result<HashMap<String, Totals>> {
        let (from, to) = (from.map(|d| d.to_string()), to.map(|d| d.to_string()));
        self.pool.with(|client| {
            // Summed as floating point, as SQLite's TOTAL: never an overflow; the casts below saturate.
            let rows = client.query(
                "SELECT creative, COALESCE(SUM(impressions::float8), 0), COALESCE(SUM(clicks::float8), 0),
                 COALESCE(SUM(conversions::float8), 0), COALESCE(SUM(spend_micros::float8), 0),
                 COALESCE(SUM(revenue_micros::float8), 0), COUNT(*)
                 FROM creative_performance
                 WHERE ($1::text IS NULL OR day >= $1) AND ($2::text IS NULL OR day <= $2) GROUP BY creative",
                &[&from, &to],
            )?;
            Ok(rows
                .iter()
                .map(|r| {
                    let totals = Totals {
                        impressions: r.get::<_, f64>(1) as u64,
                        clicks: r.get::<_, f64>(2) as u64,
                        conversions: r.get::<_, f64>(3) as u64,
                        spend_micros: r.get::<_, f64>(4) as i64,
                        revenue_micros: r.get::<_, f64>(5) as i64,
                        days: r.get::<_, i64>(6) as u32,
                    };
                    (r.get(0), totals)
                })
                .collect())
        })
    }

    fn count_performance(&self) -> Result<u64> {
        self.pool.with(|client| {
            Ok(client.query_one("SELECT COUNT(*) FROM creative_performance", &[])?.get::<_, i64>(0) as u64)
        })
    }

    fn snapshot(&self, name: &str) -> Result<Option<String>> {
        self.pool.with(|client| {
            Ok(client.query_opt("SELECT body FROM insight_snapshots WHERE name = $1", &[&name])?.map(|r| r.get(0)))
        })
    }

    fn put_snapshot(&self, name: &str, body: &str) -> Result<()> {
        self.pool.with(|client| {
            client.execute(
                "INSERT INTO insight_snapshots (name, body) VALUES ($1, $2)
                 ON CONFLICT (name) DO UPDATE SET body = excluded.body",
                &[&name, &body],
            )?;
            Ok(())
        })
    }
}
