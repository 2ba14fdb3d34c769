//! `creatives.db`: creatives, their tags and their daily performance. Written by imports and the API, read by the
//! analysis; kept apart from the event path's databases so a long import never holds up an acknowledgement.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};
use tutti_core::creative::{Creative, Date, Owner, Performance, Tag, TagSource, Totals};

use super::{ReadPool, open_side};
use crate::{Changes, CreativeStore, Result, StoreError};

pub const CREATIVES_FILE: &str = "creatives.db";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS creatives (
    id             TEXT PRIMARY KEY,
    campaign       TEXT NOT NULL,
    channel        TEXT NOT NULL,
    language       TEXT NOT NULL,
    headline       TEXT NOT NULL,
    body           TEXT NOT NULL,
    call_to_action TEXT NOT NULL,
    landing_url    TEXT NOT NULL,
    -- `ours`, or `competitor:` and the competitor's name
    owner          TEXT NOT NULL,
    launched       TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS creative_tags (
    creative   TEXT NOT NULL,
    name       TEXT NOT NULL,
    value      TEXT NOT NULL,
    confidence REAL NOT NULL,
    source     TEXT NOT NULL,
    why        TEXT,
    PRIMARY KEY (creative, name)
) WITHOUT ROWID;
-- Days as YYYY-MM-DD text: they sort as dates do.
CREATE TABLE IF NOT EXISTS performance (
    creative       TEXT    NOT NULL,
    day            TEXT    NOT NULL,
    impressions    INTEGER NOT NULL,
    clicks         INTEGER NOT NULL,
    conversions    INTEGER NOT NULL,
    spend_micros   INTEGER NOT NULL,
    revenue_micros INTEGER,
    PRIMARY KEY (creative, day)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS insight_snapshots (
    name TEXT PRIMARY KEY,
    body TEXT NOT NULL
) WITHOUT ROWID;
";

pub struct SqliteCreativeStore {
    writer: Mutex<Connection>,
    pool: ReadPool,
}

impl SqliteCreativeStore {
    pub fn open(path: &Path) -> Result<SqliteCreativeStore> {
        // Imports are re-runnable and the API answers after the commit; a power cut may lose the last import.
        let conn = open_side(path, 8 * 1024, SCHEMA)?;
        Ok(SqliteCreativeStore { writer: Mutex::new(conn), pool: ReadPool::new(path, 16 * 1024) })
    }

    fn writer(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub(crate) fn owner_text(owner: &Owner) -> String {
    match owner {
        Owner::Ours => "ours".to_owned(),
        Owner::Competitor(name) => format!("competitor:{name}"),
    }
}

pub(crate) fn owner_of(text: &str) -> Owner {
    match text.strip_prefix("competitor:") {
        Some(name) => Owner::Competitor(name.to_owned()),
        None => Owner::Ours,
    }
}

pub(crate) fn source_text(s: TagSource) -> &'static str {
    match s {
        TagSource::Local => "local",
        TagSource::Model => "model",
        TagSource::Manual => "manual",
    }
}

pub(crate) fn source_of(text: &str) -> TagSource {
    match text {
        "manual" => TagSource::Manual,
        "model" => TagSource::Model,
        _ => TagSource::Local,
    }
}

pub(crate) fn date_of(text: &str) -> Result<Date> {
    text.parse().map_err(|e| StoreError::Corrupt(format!("stored day `{text}`: {e}")))
}

/// Inserts a row, or updates it where it differs: which of the two happened (or neither) is counted.
fn upsert(
    insert: &mut rusqlite::CachedStatement<'_>,
    update: &mut rusqlite::CachedStatement<'_>,
    values: &[&dyn rusqlite::ToSql],
    changes: &mut Changes,
) -> Result<()> {
    if insert.execute(values)? == 1 {
        changes.inserted += 1;
    } else if update.execute(values)? == 1 {
        changes.updated += 1;
    } else {
        changes.unchanged += 1;
    }
    Ok(())
}

fn write_tags(conn: &Connection, creative: &str, tags: &BTreeMap<String, Tag>) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO creative_tags (creative, name, value, confidence, source, why) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (creative, name) DO UPDATE SET
             value = excluded.value, confidence = excluded.confidence, source = excluded.source, why = excluded.why
         WHERE creative_tags.source <> 'manual' OR excluded.source = 'manual'",
    )?;
    for (name, tag) in tags {
        stmt.execute(params![creative, name, tag.value, tag.confidence, source_text(tag.source), tag.why])?;
    }
    Ok(())
}

fn read_tags(conn: &Connection, creative: Option<&str>) -> Result<HashMap<String, BTreeMap<String, Tag>>> {
    let mut out: HashMap<String, BTreeMap<String, Tag>> = HashMap::new();
    let mut stmt = conn.prepare_cached(
        "SELECT creative, name, value, confidence, source, why FROM creative_tags
         WHERE ?1 IS NULL OR creative = ?1",
    )?;
    let rows = stmt.query_map([creative], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            Tag { value: r.get(2)?, confidence: r.get(3)?, source: source_of(&r.get::<_, String>(4)?), why: r.get(5)? },
        ))
    })?;
    for row in rows {
        let (creative, name, tag) = row?;
        out.entry(creative).or_default().insert(name, tag);
    }
    Ok(out)
}

fn creative_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Creative, Option<String>)> {
    Ok((
        Creative {
            id: r.get(0)?,
            campaign: r.get(1)?,
            channel: r.get(2)?,
            language: r.get(3)?,
            headline: r.get(4)?,
            body: r.get(5)?,
            call_to_action: r.get(6)?,
            landing_url: r.get(7)?,
            owner: owner_of(&r.get::<_, String>(8)?),
            launched: None,
            tags: BTreeMap::new(),
        },
        r.get(9)?,
    ))
}

const CREATIVE_COLUMNS: &str =
    "id, campaign, channel, language, headline, body, call_to_action, landing_url, owner, launched";

impl CreativeStore for SqliteCreativeStore {
    fn put_creatives(&self, creatives: &[Creative]) -> Result<Changes> {
        let mut conn = self.writer();
        let tx = conn.transaction()?;
        let mut changes = Changes::default();
        {
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO creatives (id, campaign, channel, language, headline, body, call_to_action,
                 landing_url, owner, launched) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?;
            let mut update = tx.prepare_cached(
                "UPDATE creatives SET campaign = ?2, channel = ?3, language = ?4, headline = ?5, body = ?6,
                 call_to_action = ?7, landing_url = ?8, owner = ?9, launched = ?10
                 WHERE id = ?1 AND (campaign, channel, language, headline, body, call_to_action, landing_url, owner,
                 launched) IS NOT (?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?;
            for c in creatives {
                let launched = c.launched.map(|d| d.to_string());
                let values = params![
                    c.id,
                    c.campaign,
                    c.channel,
                    c.language,
                    c.headline,
                    c.body,
                    c.call_to_action,
                    c.landing_url,
                    owner_text(&c.owner),
                    launched
                ];
                upsert(&mut insert, &mut update, values, &mut changes)?;
                write_tags(&tx, &c.id, &c.tags)?;
            }
        }
        tx.commit()?;
        Ok(changes)
    }

    fn put_performance(&self, rows: &[Performance]) -> Result<Changes> {
        let mut conn = self.writer();
        let tx = conn.transaction()?;
        let mut changes = Changes::default();
        {
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO performance (creative, day, impressions, clicks, conversions, spend_micros,
                 revenue_micros) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            let mut update = tx.prepare_cached(
                "UPDATE performance SET impressions = ?3, clicks = ?4, conversions = ?5, spend_micros = ?6,
                 revenue_micros = ?7
                 WHERE creative = ?1 AND day = ?2
                 AND (impressions, clicks, conversions, spend_micros, revenue_micros) IS NOT (?3, ?4, ?5, ?6, ?7)",
            )?;
            let mut day = String::with_capacity(10);
            for row in rows {
                use std::fmt::Write as _;
                day.clear();
                let _ = write!(day, "{}", row.date);
                let n = &row.numbers;
                let values = params![
                    row.creative,
                    day,
                    n.impressions as i64,
                    n.clicks as i64,
                    n.conversions as i64,
                    n.spend_micros,
                    n.revenue_micros
                ];
                upsert(&mut insert, &mut update, values, &mut changes)?;
            }
        }
        tx.commit()?;
        Ok(changes)
    }

    fn put_tags(&self, creative: &str, tags: &BTreeMap<String, Tag>) -> Result<()> {
        let conn = self.writer();
        write_tags(&conn, creative, tags)
    }

    fn clear_manual_tag(&self, creative: &str, name: &str) -> Result<bool> {
        let conn = self.writer();
        let n = conn.execute(
            "DELETE FROM creative_tags WHERE creative = ?1 AND name = ?2 AND source = 'manual'",
            params![creative, name],
        )?;
        Ok(n > 0)
    }

    fn creatives(&self) -> Result<Vec<Creative>> {
        self.pool.with(|conn| {
            let mut tags = read_tags(conn, None)?;
            let mut stmt = conn.prepare_cached(&format!("SELECT {CREATIVE_COLUMNS} FROM creatives ORDER BY id"))?;
            let rows = stmt.query_map([], creative_row)?;
            let mut out = Vec::new();
            for row in rows {
                let (mut c, launched) = row?;
                c.launched = launched.as_deref().map(date_of).transpose()?;
                c.tags = tags.remove(&c.id).unwrap_or_default();
                out.push(c);
            }
            Ok(out)
        })
    }

    fn creative(&self, id: &str) -> Result<Option<Creative>> {
        self.pool.with(|conn| {
            let mut stmt = conn.prepare_cached(&format!("SELECT {CREATIVE_COLUMNS} FROM creatives WHERE id = ?1"))?;
            let Some((mut c, launched)) = stmt.query_row([id], creative_row).optional()? else {
                return Ok(None);
            };
            c.launched = launched.as_deref().map(date_of).transpose()?;
            c.tags = read_tags(conn, Some(id))?.remove(id).unwrap_or_default();
            Ok(Some(c))
        })
    }

    fn totals(&self, from: Option<Date>, to: Option<Date>) -> Result<HashMap<String, Totals>> {
        self.pool.with(|conn| {
            let mut stmt = conn.prepare_cached(
                // TOTAL, not SUM: a float never fails on overflow, and the casts below saturate.
                "SELECT creative, TOTAL(impressions), TOTAL(clicks), TOTAL(conversions), TOTAL(spend_micros),
                 TOTAL(revenue_micros), COUNT(*) FROM performance
                 WHERE (?1 IS NULL OR day >= ?1) AND (?2 IS NULL OR day <= ?2) GROUP BY creative",
            )?;
            let rows = stmt.query_map(params![from.map(|d| d.to_string()), to.map(|d| d.to_string())], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    Totals {
                        impressions: r.get::<_, f64>(1)? as u64,
                        clicks: r.get::<_, f64>(2)? as u64,
                        conversions: r.get::<_, f64>(3)? as u64,
                        spend_micros: r.get::<_, f64>(4)? as i64,
                        revenue_micros: r.get::<_, f64>(5)? as i64,
                        days: r.get::<_, i64>(6)? as u32,
                    },
                ))
            })?;
            Ok(rows.collect::<rusqlite::Result<HashMap<_, _>>>()?)
        })
    }

    fn snapshot(&self, name: &str) -> Result<Option<String>> {
        self.pool.with(|conn| {
            Ok(conn.query_row("SELECT body FROM insight_snapshots WHERE name = ?1", [name], |r| r.get(0)).optional()?)
        })
    }

    fn put_snapshot(&self, name: &str, body: &str) -> Result<()> {
        self.writer().execute(
            "INSERT INTO insight_snapshots (name, body) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET body = excluded.body",
            params![name, body],
        )?;
        Ok(())
    }

    fn count_performance(&self) -> Result<u64> {
        self.pool
            .with(|conn| Ok(conn.query_row("SELECT COUNT(*) FROM performance", [], |r| r.get::<_, i64>(0))? as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tutti_core::creative::Daily;

    fn creative(id: &str, headline: &str) -> Creative {
        Creative {
            id: id.to_owned(),
            campaign: "c".to_owned(),
            channel: "facebook".to_owned(),
            language: "vi".to_owned(),
            headline: headline.to_owned(),
            body: "Giảm 30% hôm nay".to_owned(),
            call_to_action: "Mua ngay".to_owned(),
            landing_url: String::new(),
            owner: Owner::Ours,
            launched: Some(Date::constant(2026, 3, 1)),
            tags: BTreeMap::new(),
        }
    }

    fn row(id: &str, day: i8, impressions: u64) -> Performance {
        Performance {
            creative: id.to_owned(),
            date: Date::constant(2026, 3, day),
            numbers: Daily { impressions, clicks: 10, conversions: 1, spend_micros: 5_000_000, revenue_micros: None },
        }
    }

    #[test]
    fn writing_the_same_thing_twice_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteCreativeStore::open(&dir.path().join(CREATIVES_FILE)).unwrap();
        let cs = vec![creative("a", "Mệt mỏi?"), creative("b", "担心数据安全")];
        assert_eq!(store.put_creatives(&cs).unwrap(), Changes { inserted: 2, updated: 0, unchanged: 0 });
        assert_eq!(store.put_creatives(&cs).unwrap(), Changes { inserted: 0, updated: 0, unchanged: 2 });
        let mut changed = cs.clone();
        changed[1].headline = "担心数据安全？".to_owned();
        assert_eq!(store.put_creatives(&changed).unwrap(), Changes { inserted: 0, updated: 1, unchanged: 1 });
        assert_eq!(store.creative("b").unwrap().unwrap().headline, "担心数据安全？");

        let rows = vec![row("a", 1, 100), row("a", 2, 200), row("b", 1, 50)];
        assert_eq!(store.put_performance(&rows).unwrap().inserted, 3);
        assert_eq!(store.put_performance(&rows).unwrap(), Changes { inserted: 0, updated: 0, unchanged: 3 });
        assert_eq!(store.put_performance(&[row("a", 2, 250)]).unwrap().updated, 1);
        let totals = store.totals(None, None).unwrap();
        assert_eq!(totals["a"].impressions, 350);
        assert_eq!(totals["a"].days, 2);
        assert_eq!(totals["a"].spend_micros, 10_000_000);
        let march_2 = store.totals(Some(Date::constant(2026, 3, 2)), None).unwrap();
        assert_eq!(march_2["a"].impressions, 250);
        assert!(!march_2.contains_key("b"));
        assert_eq!(store.count_performance().unwrap(), 3);
    }

    #[test]
    fn a_manual_tag_wins_and_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteCreativeStore::open(&dir.path().join(CREATIVES_FILE)).unwrap();
        store.put_creatives(&[creative("a", "x")]).unwrap();
        let local = |value: &str| {
            let mut t = BTreeMap::new();
            t.insert(
                "tone".to_owned(),
                Tag { value: value.to_owned(), confidence: 0.7, source: TagSource::Local, why: None },
            );
            t
        };
        store.put_tags("a", &local("rational")).unwrap();
        let mut manual = BTreeMap::new();
        manual.insert("tone".to_owned(), Tag::manual("emotional"));
        store.put_tags("a", &manual).unwrap();
        // Tagging again does not undo the person's choice.
        store.put_tags("a", &local("rational")).unwrap();
        let tag = store.creative("a").unwrap().unwrap().tags["tone"].clone();
        assert_eq!((tag.value.as_str(), tag.source), ("emotional", TagSource::Manual));
        assert!(store.clear_manual_tag("a", "tone").unwrap());
        store.put_tags("a", &local("rational")).unwrap();
        assert_eq!(store.creative("a").unwrap().unwrap().tags["tone"].value, "rational");
        assert!(!store.clear_manual_tag("a", "tone").unwrap());
    }

    #[test]
    fn competitors_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteCreativeStore::open(&dir.path().join(CREATIVES_FILE)).unwrap();
        let mut c = creative("r1", "x");
        c.owner = Owner::Competitor("rival-co".to_owned());
        store.put_creatives(std::slice::from_ref(&c)).unwrap();
        assert_eq!(store.creatives().unwrap(), vec![c]);
    }
}
