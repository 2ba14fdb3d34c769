//! Creatives and daily performance from CSV exports: Meta Ads Manager's, Google Ads', and a documented generic
//! layout (`docs/insights.md`).
//!
//! Column names follow what the platforms put in their exports: Meta's Ads Manager column set ("Ad ID", "Ad
//! name", "Campaign name", "Day", "Impressions", "Link clicks", "Results", "Amount spent (USD)", ...; see Meta's
//! column reference, https://www.facebook.com/business/help/447834205249495) and a Google Ads ad report ("Ad ID",
//! "Campaign", "Day", "Impr.", "Clicks", "Conversions", "Cost", "Conv. value", "Headline 1", "Description",
//! "Final URL"; Google Ads downloads put a title line and a date-range line above the header and "Total: ..." rows
//! at the end). Headers are matched without regard to case, and a trailing currency such as " (USD)" is ignored.
//! Files may be UTF-8 (with or without a byte-order mark) or UTF-16 with one (Google's "CSV for Excel"), comma or
//! tab separated. Numbers may group thousands with commas; "--" and blanks are zero.
//!
//! Rows are read in chunks, so a file of millions of rows never sits in memory whole. A row that cannot be read
//! is rejected with its line number and the reason; the rest of the file goes on.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;

use serde::Serialize;
use tutti_core::creative::{Creative, Daily, Date, Owner, Performance, Tag};

/// Which export a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    Meta,
    Google,
    Generic,
}

impl std::str::FromStr for Layout {
    type Err = String;
    fn from_str(s: &str) -> Result<Layout, String> {
        match s.to_ascii_lowercase().as_str() {
            "meta" | "facebook" => Ok(Layout::Meta),
            "google" | "google_ads" | "google-ads" => Ok(Layout::Google),
            "generic" => Ok(Layout::Generic),
            other => Err(format!("unknown layout `{other}`: expected meta, google or generic")),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// `None`: told from the header.
    pub layout: Option<Layout>,
    /// Channel for rows that do not name one (Meta's default is `facebook`, Google's `google`).
    pub channel: Option<String>,
    /// Whose creatives these are, for layouts that do not say (Meta and Google exports are always ours).
    pub competitor: Option<String>,
}

/// Why a file could not be imported at all.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ImportError {
    #[error("the file is empty")]
    Empty,
    #[error("no header row found: expected {0}")]
    NoHeader(String),
    #[error("the header has no `{column}` column ({layout:?} layout)")]
    MissingColumn { layout: Layout, column: &'static str },
    #[error("cannot read the file: {0}")]
    Read(String),
}

/// A row that was left out, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rejected {
    pub line: u64,
    pub reason: String,
}

/// What one chunk of the file held.
#[derive(Debug, Default)]
pub struct Chunk {
    /// Creatives first seen in this chunk, or changed by it.
    pub creatives: Vec<Creative>,
    pub performance: Vec<Performance>,
    pub rejected: Vec<Rejected>,
    /// Summary rows ("Total: ...") and blank lines skipped.
    pub skipped: u64,
}

/// Reads an export chunk by chunk.
pub struct Importer {
    records: csv::StringRecordsIntoIter<Box<dyn Read>>,
    layout: Layout,
    columns: Columns,
    options: ImportOptions,
    /// Creatives already handed out, so a creative is written once per import, not once per day.
    seen: HashMap<String, Creative>,
    bytes: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for Importer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Importer").field("layout", &self.layout).field("columns", &self.columns).finish_non_exhaustive()
    }
}

/// Column positions.
#[derive(Debug, Default)]
struct Columns {
    id: Option<usize>,
    name: Option<usize>,
    campaign: Option<usize>,
    channel: Option<usize>,
    language: Option<usize>,
    headline: Option<usize>,
    body: Option<usize>,
    call_to_action: Option<usize>,
    landing_url: Option<usize>,
    owner: Option<usize>,
    launched: Option<usize>,
    date: Option<usize>,
    reporting_end: Option<usize>,
    impressions: Option<usize>,
    clicks: Option<usize>,
    conversions: Option<usize>,
    spend: Option<usize>,
    revenue: Option<usize>,
    tags: Vec<(String, usize)>,
}

/// Header names per field and layout, most specific first.
fn names(layout: Layout, field: &str) -> &'static [&'static str] {
    match (layout, field) {
        (Layout::Meta, "id") => &["ad id"],
        (Layout::Meta, "name") => &["ad name"],
        (Layout::Meta, "campaign") => &["campaign name"],
        (Layout::Meta, "channel") => &["platform", "publisher platform"],
        (Layout::Meta, "headline") => &["title", "headline", "ad creative title"],
        (Layout::Meta, "body") => &["body", "primary text", "ad creative body"],
        (Layout::Meta, "call_to_action") => &["call to action", "call to action type"],
        (Layout::Meta, "landing_url") => &["link", "website url", "destination url"],
        (Layout::Meta, "date") => &["day", "date", "reporting starts"],
        (Layout::Meta, "reporting_end") => &["reporting ends"],
        (Layout::Meta, "impressions") => &["impressions"],
        (Layout::Meta, "clicks") => &["link clicks", "clicks (all)", "clicks"],
        (Layout::Meta, "conversions") => &["results", "purchases", "leads", "conversions"],
        (Layout::Meta, "spend") => &["amount spent", "spend"],
        (Layout::Meta, "revenue") => {
            &["purchases conversion value", "website purchases conversion value", "conversion value"]
        }
        (Layout::Google, "id") => &["ad id"],
        (Layout::Google, "name") => &["ad name", "ad"],
        (Layout::Google, "campaign") => &["campaign"],
        (Layout::Google, "channel") => &["network", "network (with search partners)"],
        (Layout::Google, "headline") => &["headline 1", "headline"],
        (Layout::Google, "body") => &["description", "description 1", "description line 1"],
        (Layout::Google, "landing_url") => &["final url", "final urls"],
        (Layout::Google, "date") => &["day", "date"],
        (Layout::Google, "impressions") => &["impr.", "impressions"],
        (Layout::Google, "clicks") => &["clicks"],
        (Layout::Google, "conversions") => &["conversions"],
        (Layout::Google, "spend") => &["cost"],
        (Layout::Google, "revenue") => &["conv. value", "conversion value", "total conv. value"],
        (Layout::Generic, "id") => &["creative_id", "id"],
        (Layout::Generic, "campaign") => &["campaign"],
        (Layout::Generic, "channel") => &["channel"],
        (Layout::Generic, "language") => &["language"],
        (Layout::Generic, "headline") => &["headline"],
        (Layout::Generic, "body") => &["body"],
        (Layout::Generic, "call_to_action") => &["call_to_action"],
        (Layout::Generic, "landing_url") => &["landing_url"],
        (Layout::Generic, "owner") => &["owner"],
        (Layout::Generic, "launched") => &["launched"],
        (Layout::Generic, "date") => &["date", "day"],
        (Layout::Generic, "impressions") => &["impressions"],
        (Layout::Generic, "clicks") => &["clicks"],
        (Layout::Generic, "conversions") => &["conversions"],
        (Layout::Generic, "spend") => &["spend"],
        (Layout::Generic, "revenue") => &["revenue"],
        _ => &[],
    }
}

/// A header cell as matched: trimmed, lower case, a trailing "(USD)"-style currency removed.
fn header_key(cell: &str) -> String {
    let cell = cell.trim().trim_start_matches('\u{feff}').trim();
    // A currency code is three capitals: "(USD)", "(VND)"; "(all)" is part of the name.
    if let Some(open) = cell.rfind(" (") {
        let inside = &cell[open + 2..cell.len().saturating_sub(1)];
        if cell.ends_with(')') && inside.len() == 3 && inside.chars().all(|c| c.is_ascii_uppercase()) {
            return cell[..open].to_lowercase();
        }
    }
    cell.to_lowercase()
}

fn find(header: &[String], layout: Layout, field: &str) -> Option<usize> {
    names(layout, field).iter().find_map(|n| header.iter().position(|h| h == n))
}

impl Columns {
    fn of(header: &[String], layout: Layout) -> Columns {
        let f = |field| find(header, layout, field);
        let tags = if layout == Layout::Generic {
            header
                .iter()
                .enumerate()
                .filter_map(|(i, h)| h.strip_prefix("tag:").map(|name| (name.trim().to_owned(), i)))
                .filter(|(name, _)| !name.is_empty())
                .collect()
        } else {
            Vec::new()
        };
        Columns {
            id: f("id"),
            name: f("name"),
            campaign: f("campaign"),
            channel: f("channel"),
            language: f("language"),
            headline: f("headline"),
            body: f("body"),
            call_to_action: f("call_to_action"),
            landing_url: f("landing_url"),
            owner: f("owner"),
            launched: f("launched"),
            date: f("date"),
            reporting_end: f("reporting_end"),
            impressions: f("impressions"),
            clicks: f("clicks"),
            conversions: f("conversions"),
            spend: f("spend"),
            revenue: f("revenue"),
            tags,
        }
    }

    /// Whether this looks like a header of the layout: an id (or Meta's ad name) and, for exports, a day.
    fn fits(&self, layout: Layout) -> bool {
        let id = self.id.is_some() || (layout == Layout::Meta && self.name.is_some());
        match layout {
            Layout::Generic => id,
            _ => id && self.date.is_some() && self.impressions.is_some(),
        }
    }
}

/// Decodes UTF-16 files (with a byte-order mark) to UTF-8; anything else passes through.
fn decode(mut input: Box<dyn Read>) -> Result<Box<dyn Read>, ImportError> {
    let mut head = [0u8; 2];
    let mut got = 0;
    while got < 2 {
        match input.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => return Err(ImportError::Read(e.to_string())),
        }
    }
    let little = head == [0xFF, 0xFE];
    let big = head == [0xFE, 0xFF];
    if got == 2 && (little || big) {
        let mut rest = Vec::new();
        input.read_to_end(&mut rest).map_err(|e| ImportError::Read(e.to_string()))?;
        let units: Vec<u16> = rest
            .chunks_exact(2)
            .map(|b| if little { u16::from_le_bytes([b[0], b[1]]) } else { u16::from_be_bytes([b[0], b[1]]) })
            .collect();
        let text = String::from_utf16(&units).map_err(|_| ImportError::Read("invalid UTF-16".to_owned()))?;
        return Ok(Box::new(std::io::Cursor::new(text.into_bytes())));
    }
    Ok(Box::new(std::io::Cursor::new(head[..got].to_vec()).chain(input)))
}

/// Counts bytes as they are read, for a progress bar.
struct Counted<R> {
    inner: R,
    bytes: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

impl Importer {
    /// Finds the header (within the first ten rows; exports put titles above it) and the layout.
    pub fn new(input: impl Read + 'static, options: ImportOptions) -> Result<Importer, ImportError> {
        let bytes = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counted: Box<dyn Read> =
            Box::new(std::io::BufReader::with_capacity(256 * 1024, Counted { inner: input, bytes: bytes.clone() }));
        let mut decoded = decode(counted)?;
        // Tab or comma: whichever a line among the first ten has most of (exports put a title line, with
        // neither, above the header).
        let mut first = Vec::new();
        let mut byte = [0u8; 1];
        let mut lines = 0;
        while lines < 10 && first.len() < 64 * 1024 {
            match decoded.read(&mut byte) {
                Ok(0) => break,
                Ok(_) => {
                    first.push(byte[0]);
                    if byte[0] == b'\n' {
                        lines += 1;
                    }
                }
                Err(e) => return Err(ImportError::Read(e.to_string())),
            }
        }
        if first.iter().all(|b| b.is_ascii_whitespace()) {
            return Err(ImportError::Empty);
        }
        let most = |sep: u8| first.split(|b| *b == b'\n').map(|l| l.iter().filter(|b| **b == sep).count()).max();
        let delimiter = if most(b'\t') > most(b',') { b'\t' } else { b',' };
        let joined: Box<dyn Read> = Box::new(std::io::Cursor::new(first).chain(decoded));
        let mut records = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .from_reader(joined)
            .into_records();
        let layouts = match options.layout {
            Some(l) => vec![l],
            None => vec![Layout::Generic, Layout::Meta, Layout::Google],
        };
        for _ in 0..10 {
            let Some(record) = records.next() else { break };
            let record = record.map_err(|e| ImportError::Read(e.to_string()))?;
            let header: Vec<String> = record.iter().map(header_key).collect();
            for &layout in &layouts {
                let columns = Columns::of(&header, layout);
                if columns.fits(layout) {
                    return Ok(Importer { records, layout, columns, options, seen: HashMap::new(), bytes });
                }
            }
        }
        let expected = match options.layout {
            Some(Layout::Meta) => "Meta Ads Manager columns such as \"Ad ID\", \"Day\" and \"Impressions\"",
            Some(Layout::Google) => "Google Ads columns such as \"Ad ID\", \"Day\" and \"Impr.\"",
            Some(Layout::Generic) => "a `creative_id` column",
            None => "a Meta, Google Ads or generic header (see docs/insights.md)",
        };
        Err(ImportError::NoHeader(expected.to_owned()))
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Bytes of the file read so far (for a progress bar over the file's size).
    pub fn bytes_read(&self) -> u64 {
        self.bytes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Up to `rows` rows; `None` at the end of the file.
    pub fn next_chunk(&mut self, rows: usize) -> Option<Chunk> {
        let mut chunk = Chunk::default();
        let mut read = 0;
        while read < rows {
            let Some(record) = self.records.next() else { break };
            read += 1;
            let record = match record {
                Ok(r) => r,
                Err(e) => {
                    let line = e.position().map_or(0, |p| p.line());
                    chunk.rejected.push(Rejected { line, reason: format!("unreadable CSV: {e}") });
                    continue;
                }
            };
            let line = record.position().map_or(0, |p| p.line());
            if record.iter().all(|c| c.trim().is_empty())
                || record.get(0).is_some_and(|c| c.trim_start().to_lowercase().starts_with("total"))
            {
                chunk.skipped += 1;
                continue;
            }
            if let Err(reason) = self.row(&record, &mut chunk) {
                chunk.rejected.push(Rejected { line, reason });
            }
        }
        (read > 0).then_some(chunk)
    }

    fn row(&mut self, r: &csv::StringRecord, chunk: &mut Chunk) -> Result<(), String> {
        if r.iter().any(|cell| cell.contains('\0')) {
            return Err("a cell holds a NUL character (U+0000)".to_owned());
        }
        let c = &self.columns;
        let get = |i: Option<usize>| i.and_then(|i| r.get(i)).map(str::trim).unwrap_or("");
        let id = match (get(c.id), get(c.name)) {
            ("", "") => return Err("no creative id".to_owned()),
            ("", name) => name.to_owned(),
            (id, _) => id.to_owned(),
        };
        let default_channel = match self.layout {
            Layout::Meta => "facebook",
            Layout::Google => "google",
            Layout::Generic => "",
        };
        let channel = match get(c.channel) {
            "" => self.options.channel.clone().unwrap_or_else(|| default_channel.to_owned()),
            named => named.to_lowercase(),
        };
        if channel.is_empty() {
            return Err("no channel (a `channel` column, or --channel)".to_owned());
        }
        let owner = match get(c.owner).to_lowercase().as_str() {
            "" | "ours" | "our" | "us" => match &self.options.competitor {
                Some(name) => Owner::Competitor(name.clone()),
                None => Owner::Ours,
            },
            _ => Owner::Competitor(get(c.owner).to_owned()),
        };
        let launched = match get(c.launched) {
            "" => None,
            text => Some(parse_date(text).map_err(|e| format!("launched: {e}"))?),
        };
        let headline = match get(c.headline) {
            "" if self.layout != Layout::Generic => get(c.name),
            h => h,
        };
        let mut tags = BTreeMap::new();
        for (name, i) in &c.tags {
            let value = r.get(*i).map(str::trim).unwrap_or("");
            if !value.is_empty() {
                tags.insert(name.clone(), Tag::manual(value));
            }
        }
        let creative = Creative {
            id: id.clone(),
            campaign: get(c.campaign).to_owned(),
            channel,
            language: get(c.language).to_owned(),
            headline: headline.to_owned(),
            body: get(c.body).to_owned(),
            call_to_action: get(c.call_to_action).to_owned(),
            landing_url: get(c.landing_url).to_owned(),
            owner,
            launched,
            tags,
        };
        // Performance, when the row has a day.
        let day = get(c.date);
        let performance = if day.is_empty() {
            if self.layout != Layout::Generic {
                return Err("no day".to_owned());
            }
            None
        } else {
            let date = parse_date(day)?;
            if let Some(end) = c.reporting_end.map(|_| get(c.reporting_end)).filter(|e| !e.is_empty()) {
                let end = parse_date(end)?;
                if end != date {
                    return Err(format!(
                        "not a daily row: reporting starts {date} and ends {end} (export with a breakdown by day)"
                    ));
                }
            }
            let count = |i: Option<usize>, what: &str| parse_count(get(i)).map_err(|e| format!("{what}: {e}"));
            let numbers = Daily {
                impressions: count(c.impressions, "impressions")?,
                clicks: count(c.clicks, "clicks")?,
                conversions: count(c.conversions, "conversions")?,
                spend_micros: parse_micros(get(c.spend)).map_err(|e| format!("spend: {e}"))?,
                revenue_micros: match get(c.revenue) {
                    "" | "--" => None,
                    text => Some(parse_micros(text).map_err(|e| format!("revenue: {e}"))?),
                },
            };
            Some(Performance { creative: id.clone(), date, numbers })
        };
        if self.seen.get(&id) != Some(&creative) {
            self.seen.insert(id, creative.clone());
            chunk.creatives.push(creative);
        }
        chunk.performance.extend(performance);
        Ok(())
    }
}

/// `2026-03-01`, `2026/03/01` or `Mar 1, 2026`.
pub fn parse_date(text: &str) -> Result<Date, String> {
    let t = text.trim();
    if let Ok(d) = t.replace('/', "-").parse::<Date>() {
        return Ok(d);
    }
    let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
    let parts: Vec<&str> = t.split([' ', ',']).filter(|p| !p.is_empty()).collect();
    if let [month, day, year] = parts.as_slice() {
        let m = month.get(..3).map(str::to_lowercase);
        let month = m.and_then(|m| months.iter().position(|x| *x == m));
        if let (Some(m), Ok(day), Ok(year)) = (month, day.parse(), year.parse())
            && let Ok(d) = Date::new(year, m as i8 + 1, day)
        {
            return Ok(d);
        }
    }
    Err(format!("`{t}` is not a date (expected YYYY-MM-DD)"))
}

/// A whole, non-negative number; thousands may be grouped with commas; blank and `--` are 0.
pub fn parse_count(text: &str) -> Result<u64, String> {
    let t: String = text.trim().chars().filter(|c| *c != ',' && *c != ' ' && *c != '\u{a0}').collect();
    if t.is_empty() || t == "--" {
        return Ok(0);
    }
    // Exports sometimes write counts as decimals ("12.0").
    let whole = t.strip_suffix(".0").or_else(|| t.strip_suffix(".00")).unwrap_or(&t);
    whole.parse::<u64>().map_err(|_| format!("`{}` is not a whole number of at least 0", text.trim()))
}

/// A non-negative amount in currency units ("1,234.56", "$12.50") as millionths; blank and `--` are 0.
pub fn parse_micros(text: &str) -> Result<i64, String> {
    let t: String =
        text.trim().chars().filter(|c| !matches!(c, ',' | ' ' | '\u{a0}' | '$' | '€' | '£' | '¥' | '₫')).collect();
    if t.is_empty() || t == "--" {
        return Ok(0);
    }
    let bad = || format!("`{}` is not an amount of at least 0", text.trim());
    let (whole, fraction) = t.split_once('.').unwrap_or((&t, ""));
    if whole.is_empty() && fraction.is_empty()
        || !whole.chars().all(|c| c.is_ascii_digit())
        || !fraction.chars().all(|c| c.is_ascii_digit())
    {
        return Err(bad());
    }
    let units: i64 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| bad())? };
    let mut micros = 0i64;
    for (i, d) in fraction.chars().take(6).enumerate() {
        micros += (d as i64 - '0' as i64) * 10i64.pow(5 - i as u32);
    }
    units.checked_mul(1_000_000).and_then(|u| u.checked_add(micros)).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_dates_as_exports_write_them() {
        assert_eq!(parse_count("1,234"), Ok(1234));
        assert_eq!(parse_count("--"), Ok(0));
        assert_eq!(parse_count("12.0"), Ok(12));
        assert!(parse_count("-3").is_err());
        assert!(parse_count("abc").is_err());
        assert_eq!(parse_micros("1,234.56"), Ok(1_234_560_000));
        assert_eq!(parse_micros("$0.5"), Ok(500_000));
        assert_eq!(parse_micros("150000"), Ok(150_000_000_000));
        assert!(parse_micros("-1").is_err());
        assert!(parse_micros("1.2.3").is_err());
        assert_eq!(parse_date("2026-03-01"), Ok(Date::constant(2026, 3, 1)));
        assert_eq!(parse_date("2026/03/01"), Ok(Date::constant(2026, 3, 1)));
        assert_eq!(parse_date("Mar 1, 2026"), Ok(Date::constant(2026, 3, 1)));
        assert!(parse_date("01/03/2026").is_err());
    }

    #[test]
    fn currency_suffixes_are_ignored_in_headers() {
        assert_eq!(header_key("Amount spent (USD)"), "amount spent");
        assert_eq!(header_key("\u{feff}Ad ID"), "ad id");
        assert_eq!(header_key("Clicks (all)"), "clicks (all)");
    }
}
