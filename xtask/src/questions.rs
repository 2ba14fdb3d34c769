//! `cargo xtask questions`: the labelled question suite (`crates/tutti-analytics/data/questions.jsonl`) asked
//! of a generated shop, each answer held against one worked out independently from the generated events.
//!
//! The suite's questions and what each expects were written by hand by Tutti's engineers; the expected rows
//! are not written down but computed here, by plain loops over the generated events (not SQL, not the reader),
//! from the expectation's kind, measure, dimension and dates. An answer counts as exact when its rows are those
//! rows (numbers to two decimals). Questions the reader should refuse count apart.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::Context;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde_json::{Value, json};
use tutti_analytics::MetricsLayer;

use crate::analytics::Rng;
use tutti_analytics::answer::{Facts, Runner};
use tutti_analytics::ask::{self, Context as AskContext};
use tutti_analytics::project::project;
use tutti_analytics::sqlite::{Cursor, Limits, SqliteAnalytics, SqliteAnalyticsReader};

const NOW: &str = "2026-12-06T10:00:00+07:00";
const ZONE: &str = "Asia/Ho_Chi_Minh";
const SUITE: &str = include_str!("../../crates/tutti-analytics/data/questions.jsonl");

#[derive(clap::Args)]
pub(crate) struct QuestionsArgs {
    /// Print every question with its answer, not only those answered wrongly.
    #[arg(long)]
    verbose: bool,
}

/// One generated event as the oracle sees it.
#[derive(Clone)]
struct Ev {
    at: i64,
    user: u64,
    name: &'static str,
    revenue: Option<f64>,
    currency: Option<&'static str>,
    items: Vec<(String, String, f64, f64)>,
    source: Option<&'static str>,
}

const CITIES: [&str; 8] = ["Hà Nội", "Hồ Chí Minh", "Đà Nẵng", "Cần Thơ", "Huế", "上海", "深圳", "Singapore"];
const SOURCES: [&str; 5] = ["google", "facebook", "zalo", "tiktok", "email"];
const CATEGORIES: [&str; 6] = ["Thời trang", "Phụ kiện", "Đồ uống", "Mỹ phẩm", "Gia dụng", "Sách"];
const USERS: u64 = 400;

fn product(p: u64) -> (String, String, f64) {
    let names = ["Áo dài", "Nón lá", "Cà phê", "Trà sen", "Son môi", "Nồi cơm", "Tiểu thuyết", "Khăn lụa"];
    let name = format!("{} {}", names[(p % 8) as usize], p / 8 + 1);
    (name, CATEGORIES[(p % 6) as usize].to_owned(), (40 + (p * 37) % 60) as f64 * 10_000.0)
}

/// The shop: 400 people from June to now, their identify calls, sign-ups, sessions and orders.
fn shop(now: i64) -> (Vec<Ev>, Vec<Value>, HashMap<u64, &'static str>) {
    let start = tutti_core::time::parse_timestamp("2026-06-01T00:00:00+07:00").expect("a time");
    let mut rng = Rng(6_122_026);
    let (mut evs, mut json, mut cities) = (Vec::new(), Vec::new(), HashMap::new());
    let rfc = |ms: i64| tutti_core::time::format_timestamp(ms);
    for user in 0..USERS {
        let city = CITIES[rng.below(CITIES.len() as u64) as usize];
        cities.insert(user, city);
        let joined = start + rng.below((now - start) as u64 * 9 / 10) as i64;
        json.push(json!({"type": "identify", "userId": format!("u{user}"), "traits": {"city": city}, "timestamp": rfc(joined)}));
        evs.push(Ev { at: joined, user, name: "identify", revenue: None, currency: None, items: vec![], source: None });
        if rng.below(3) == 0 {
            json.push(json!({"type": "track", "userId": format!("u{user}"), "event": "Signed Up", "timestamp": rfc(joined + 60_000)}));
            evs.push(Ev {
                at: joined + 60_000,
                user,
                name: "Signed Up",
                revenue: None,
                currency: None,
                items: vec![],
                source: None,
            });
        }
        let sessions = 2 + rng.below(14);
        for _ in 0..sessions {
            let mut at = joined + rng.below((now - joined).max(1) as u64) as i64;
            let source = (rng.below(4) != 0).then(|| SOURCES[rng.below(SOURCES.len() as u64) as usize]);
            let context = source.map(|s| json!({"campaign": {"source": s, "medium": "cpc"}})).unwrap_or(json!({}));
            let steps = 1 + rng.below(5);
            let p = rng.below(24);
            for step in 0..steps {
                at += 30_000 + rng.below(300_000) as i64;
                if at >= now {
                    break;
                }
                let name = ["Page Viewed", "Product Viewed", "Product Added", "Checkout Started", "Order Completed"]
                    [step as usize];
                let mut ev = Ev { at, user, name, revenue: None, currency: None, items: vec![], source };
                let mut body = json!({"type": "track", "userId": format!("u{user}"), "event": name, "timestamp": rfc(at), "context": context});
                if name == "Order Completed" {
                    let currency = if rng.below(20) == 0 { "USD" } else { "VND" };
                    let mut products = Vec::new();
                    let mut revenue = 0.0;
                    for k in 0..(1 + rng.below(3)) {
                        let (pname, category, vnd) = product((p + k * 5) % 24);
                        let price = if currency == "USD" { (vnd / 25_000.0).round() } else { vnd };
                        let quantity = (1 + rng.below(3)) as f64;
                        revenue += price * quantity;
                        products.push(json!({"product_id": format!("sku-{}", (p + k * 5) % 24), "name": pname, "category": category, "price": price, "quantity": quantity}));
                        ev.items.push((pname, category, price, quantity));
                    }
                    ev.revenue = Some(revenue);
                    ev.currency = Some(currency);
                    body["properties"] = json!({"revenue": revenue, "currency": currency, "products": products});
                } else if name != "Page Viewed" {
                    let (pname, category, price) = product(p);
                    body["properties"] =
                        json!({"product_id": format!("sku-{p}"), "name": pname, "category": category, "price": price});
                }
                json.push(body);
                evs.push(ev);
            }
        }
    }
    (evs, json, cities)
}

struct Known;

impl Facts for Known {
    fn segment_size(&self, segment: &str) -> Option<u64> {
        (segment == "vip").then_some(42)
    }
    fn flow_totals(&self, flow: &str) -> Option<Vec<(String, u64)>> {
        (flow == "welcome").then(|| vec![("completed".into(), 80), ("entered".into(), 120), ("goal".into(), 30)])
    }
}

/// Local dates to milliseconds in the zone; `until_now` cuts the end at now.
fn span(spec: &Value, key: &str, until_now: bool, tz: &TimeZone, now: i64) -> anyhow::Result<(i64, i64)> {
    let dates = spec[key].as_array().context("a period")?;
    let ms = |v: &Value| -> anyhow::Result<i64> {
        let d: Date = v.as_str().context("a date")?.parse()?;
        Ok(d.to_zoned(tz.clone())?.timestamp().as_millisecond())
    };
    let (from, mut to) = (ms(&dates[0])?, ms(&dates[1])?);
    if until_now {
        to = to.min(now);
    }
    Ok((from, to))
}

fn round(v: f64) -> Value {
    tutti_analytics::compile::number_value(v)
}

/// The oracle: what each expectation's rows are, from the events alone.
struct Oracle<'a> {
    evs: &'a [Ev],
    cities: &'a HashMap<u64, &'static str>,
    tz: TimeZone,
    now: i64,
}

impl Oracle<'_> {
    fn within(&self, (from, to): (i64, i64)) -> impl Iterator<Item = &Ev> {
        self.evs.iter().filter(move |e| e.at >= from && e.at < to)
    }

    /// Values of a measure per (dimension value, currency) over the events of a span.
    fn measure(&self, measure: &str, by: Option<&str>, span: (i64, i64)) -> BTreeMap<(String, String), f64> {
        let mut out: BTreeMap<(String, String), f64> = BTreeMap::new();
        let mut distinct: BTreeMap<(String, String), BTreeSet<u64>> = BTreeMap::new();
        let mut counts: BTreeMap<(String, String), f64> = BTreeMap::new();
        let item_dim = matches!(by, Some("product" | "category"));
        for e in self.within(span) {
            let key_of = |item: Option<&(String, String, f64, f64)>| -> String {
                match (by, item) {
                    (Some("product"), Some(i)) => i.0.clone(),
                    (Some("category"), Some(i)) => i.1.clone(),
                    (Some("city"), _) => self.cities.get(&e.user).map_or("(none)".into(), |c| (*c).to_owned()),
                    (Some("utm_source"), _) => e.source.map_or("(none)".into(), str::to_owned),
                    _ => String::new(),
                }
            };
            let currency = e.currency.unwrap_or("").to_owned();
            match measure {
                "active_profiles" => {
                    distinct.entry((key_of(None), String::new())).or_default().insert(e.user);
                }
                "orders" if e.name == "Order Completed" => {
                    if item_dim {
                        let keys: BTreeSet<String> = e.items.iter().map(|i| key_of(Some(i))).collect();
                        for k in keys {
                            *out.entry((k, String::new())).or_default() += 1.0;
                        }
                    } else {
                        *out.entry((key_of(None), String::new())).or_default() += 1.0;
                    }
                }
                "units" if e.name == "Order Completed" => {
                    for i in &e.items {
                        *out.entry((key_of(Some(i)), String::new())).or_default() += i.3;
                    }
                }
                "revenue" if e.name == "Order Completed" => {
                    if item_dim {
                        for i in &e.items {
                            *out.entry((key_of(Some(i)), currency.clone())).or_default() += i.2 * i.3;
                        }
                    } else {
                        *out.entry((key_of(None), currency.clone())).or_default() += e.revenue.unwrap_or(0.0);
                    }
                }
                "average_order_value" if e.name == "Order Completed" => {
                    *out.entry((key_of(None), currency.clone())).or_default() += e.revenue.unwrap_or(0.0);
                    *counts.entry((key_of(None), currency)).or_default() += 1.0;
                }
                _ => {}
            }
        }
        for (k, users) in distinct {
            out.insert(k, users.len() as f64);
        }
        for (k, n) in counts {
            if let Some(v) = out.get_mut(&k) {
                *v /= n;
            }
        }
        out
    }

    fn money(measure: &str) -> bool {
        matches!(measure, "revenue" | "average_order_value")
    }

    /// Rows for a total or one period of a comparison.
    fn total_rows(&self, measure: &str, span: (i64, i64)) -> Vec<Vec<Value>> {
        let values = self.measure(measure, None, span);
        if Self::money(measure) {
            values.into_iter().map(|((_, c), v)| vec![json!(c), round(v)]).collect()
        } else {
            vec![vec![round(values.values().sum())]]
        }
    }

    fn rows(&self, spec: &Value) -> anyhow::Result<Vec<Vec<Value>>> {
        let until_now = spec["until_now"].as_bool().unwrap_or(false);
        let measure = spec["measure"].as_str().unwrap_or("");
        Ok(match spec["kind"].as_str().context("kind")? {
            "top" => {
                let by = spec["by"].as_str().context("by")?;
                let values = self.measure(measure, Some(by), span(spec, "period", until_now, &self.tz, self.now)?);
                let mut rows: Vec<(String, String, f64)> = values.into_iter().map(|((k, c), v)| (k, c, v)).collect();
                let asc = spec["order"] == "asc";
                rows.sort_by(|a, b| {
                    let by_value = if asc { a.2.total_cmp(&b.2) } else { b.2.total_cmp(&a.2) };
                    by_value.then_with(|| a.0.cmp(&b.0))
                });
                rows.truncate(spec["n"].as_u64().unwrap_or(10) as usize);
                rows.into_iter()
                    .map(|(k, c, v)| {
                        if Self::money(measure) { vec![json!(k), json!(c), round(v)] } else { vec![json!(k), round(v)] }
                    })
                    .collect()
            }
            "total" => self.total_rows(measure, span(spec, "period", until_now, &self.tz, self.now)?),
            "compare" => {
                let mut rows = self.total_rows(measure, span(spec, "period", until_now, &self.tz, self.now)?);
                rows.extend(self.total_rows(measure, span(spec, "with", false, &self.tz, self.now)?));
                rows
            }
            "series" => {
                let (from, to) = span(spec, "period", until_now, &self.tz, self.now)?;
                let mut rows = Vec::new();
                let mut day: Date = jiff::Timestamp::from_millisecond(from)?.to_zoned(self.tz.clone()).date();
                let grain = spec["grain"].as_str().unwrap_or("day");
                if grain == "week" {
                    day = day.checked_sub(jiff::Span::new().days(i64::from(day.weekday().to_monday_zero_offset())))?;
                } else if grain == "month" {
                    day = day.first_of_month();
                }
                loop {
                    let next = match grain {
                        "week" => day.checked_add(jiff::Span::new().days(7))?,
                        "month" => day.last_of_month().tomorrow()?,
                        _ => day.tomorrow()?,
                    };
                    let start = day.to_zoned(self.tz.clone())?.timestamp().as_millisecond();
                    let end = next.to_zoned(self.tz.clone())?.timestamp().as_millisecond();
                    let (s, e) = (start.max(from), end.min(to));
                    if s < e {
                        let label = if grain == "month" {
                            format!("{:04}-{:02}", day.year(), day.month())
                        } else {
                            day.to_string()
                        };
                        for row in self.total_rows(measure, (s, e)) {
                            rows.push(std::iter::once(json!(label.clone())).chain(row).collect());
                        }
                    }
                    if end >= to {
                        break;
                    }
                    day = next;
                }
                rows
            }
            "people" => {
                let window = span(spec, "period", until_now, &self.tz, self.now)?;
                let did_set = |name: &str| -> BTreeSet<u64> {
                    self.within(window).filter(|e| e.name == name).map(|e| e.user).collect()
                };
                let names = |k: &str| -> Vec<String> {
                    spec[k].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_owned)).collect()
                };
                let mut people: Option<BTreeSet<u64>> = None;
                for n in names("did") {
                    let s = did_set(&n);
                    people = Some(match people {
                        Some(p) => p.intersection(&s).copied().collect(),
                        None => s,
                    });
                }
                let mut people = people.unwrap_or_default();
                for n in names("did_not") {
                    let s = did_set(&n);
                    people.retain(|u| !s.contains(u));
                }
                vec![vec![json!(people.len())]]
            }
            "segment" => vec![vec![json!(spec["name"]), json!(42)]],
            "flow" => vec![
                vec![json!("completed"), json!(80)],
                vec![json!("entered"), json!(120)],
                vec![json!("goal"), json!(30)],
            ],
            other => anyhow::bail!("unknown kind {other}"),
        })
    }
}

pub(crate) fn questions(args: QuestionsArgs) -> anyhow::Result<()> {
    let now = tutti_core::time::parse_timestamp(NOW).context("now")?;
    let tz = TimeZone::get(ZONE)?;
    let (evs, bodies, cities) = shop(now);
    let dir = std::env::temp_dir().join(format!("tutti-questions-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("analytics.db");
    let layer = MetricsLayer::defaults();
    let mut store = SqliteAnalytics::open(&path)?;
    store.reset(&layer.projection_fingerprint())?;
    let users: HashMap<String, u64> = (0..USERS).map(|u| (format!("u{u}"), u + 1)).collect();
    let mut projected = Vec::new();
    for (i, body) in bodies.iter().enumerate() {
        let event = tutti_core::Event::from_json(body.clone(), None, &Default::default(), now, || format!("m{i}"))
            .map_err(|e| anyhow::anyhow!("event {i}: {}", e.reason))?;
        let user = users[body["userId"].as_str().context("userId")?];
        projected.push(project(i as u64 + 1, &event, user, &layer));
    }
    store.apply(&projected, &[], Cursor { log: projected.len() as u64, merges: 0 })?;
    let reader = SqliteAnalyticsReader::new(&path);
    let known_events = reader.event_names(1000)?;
    let segments = vec!["vip".to_owned(), "newcomers".to_owned()];
    let flows = vec!["welcome".to_owned(), "cart-recovery".to_owned()];
    let cx = AskContext {
        now,
        zone: &tz,
        zone_name: ZONE,
        layer: &layer,
        events: &known_events,
        segments: &segments,
        flows: &flows,
    };
    let runner = Runner { layer: &layer, zone: &tz, reader: &reader, facts: &Known, limits: Limits::default() };
    let oracle = Oracle { evs: &evs, cities: &cities, tz: tz.clone(), now };

    let mut score: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut refusals = (0, 0);
    println!("# Question suite: {} events from {USERS} people, asked at {NOW} ({ZONE})\n", evs.len());
    for line in SUITE.lines().filter(|l| !l.trim().is_empty()) {
        let case: Value = serde_json::from_str(line)?;
        let (lang, question, expect) =
            (case["lang"].as_str().unwrap_or(""), case["question"].as_str().unwrap_or(""), &case["expect"]);
        let read = ask::read(question, &cx);
        if expect["kind"] == "refuse" {
            refusals.1 += 1;
            match read {
                Err(_) => refusals.0 += 1,
                Ok(r) => println!("- NOT REFUSED [{lang}] {question}\n  read as {}", serde_json::to_string(&r.query)?),
            }
            continue;
        }
        let entry = score.entry(lang.to_owned()).or_default();
        entry.1 += 1;
        let want = oracle.rows(expect)?;
        let got = match read {
            Ok(r) => runner
                .answer(r.query.clone(), r.language, r.assumptions, "local")
                .map(|a| (a, r.query))
                .map_err(|e| e.to_string()),
            Err(e) => Err(format!("not understood: {}", e.message.chars().take(80).collect::<String>())),
        };
        let (exact, shown) = match &got {
            Ok((answer, query)) => {
                let rows: Vec<Vec<Value>> = if expect["kind"] == "compare" {
                    answer.rows.iter().map(|r| r[1..].to_vec()).collect()
                } else {
                    answer.rows.clone()
                };
                (rows == want, format!("{}\n  query {}", answer.answer, serde_json::to_string(query)?))
            }
            Err(e) => (false, e.clone()),
        };
        if exact {
            entry.0 += 1;
        }
        if !exact || args.verbose {
            let mark = if exact { "ok" } else { "WRONG" };
            println!("- {mark} [{lang}] {question}\n  {shown}");
            if !exact {
                println!("  expected rows {}", serde_json::to_string(&want)?);
            }
        }
    }
    let (mut right, mut all) = (0, 0);
    println!("\n| language | answered exactly | questions | share |");
    println!("|---|---|---|---|");
    for (lang, (r, n)) in &score {
        println!("| {lang} | {r} | {n} | {:.1}% |", *r as f64 * 100.0 / *n as f64);
        right += r;
        all += n;
    }
    println!("| all | {right} | {all} | {:.1}% |", right as f64 * 100.0 / all as f64);
    println!("\nrefused as they should be: {} of {}", refusals.0, refusals.1);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
