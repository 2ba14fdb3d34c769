//! The personalisation context, at five levels, built from what the flow sends.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::DAY_MS;
use super::kind::{self, Kind};
use crate::sentiment::{self, Sentiment};
use crate::text::{self, Language};

/// Everything the copy is personalised from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Context {
    pub language: Language,
    /// The name the copy uses (the given name; the surname for a Chinese honorific).
    pub name: Option<String>,
    /// `anh`, `chị`, `先生`, `女士`, or none.
    pub honorific: Option<String>,
    /// How the copy addresses the person: `anh Minh`, `王先生`, `Lan`, or a polite default.
    pub address: String,
    /// The events the profile does most, most first.
    pub top_events: Vec<(String, u64)>,
    pub last_viewed: Option<String>,
    /// The triggering event and its item.
    pub intent: String,
    pub item: Option<String>,
    /// `replenish`, `win_back` or none, with the days it is about.
    pub need: Option<String>,
    pub need_days: Option<i64>,
    /// 0 (active) to 1 (gone).
    pub churn_risk: f64,
    pub sentiment: Sentiment,
    /// A complaint or an unhappy support exchange among the profile's recent events (within the configured
    /// days): which event, how many days ago. It makes the message an apology, however the event is worded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recent_complaint: Option<RecentComplaint>,
    /// What kind of message this is (from the brief, the event, the need, a complaint).
    pub kind: Kind,
    /// The levels of personalisation the copy uses: only those the data holds.
    pub levels: Vec<Level>,
}

/// An earlier event that says the person is unhappy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecentComplaint {
    pub event: String,
    pub days_ago: i64,
}

/// The five levels of personalisation of the design.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Name, language, honorific.
    Attributes,
    /// What the profile does most, what it last viewed.
    Behaviour,
    /// The triggering event and its item.
    Intent,
    /// Replenishment or win-back, predicted from the order history and the days unseen.
    Need,
    /// A recent complaint or unhappy exchange.
    Emotion,
}

/// How many days back a complaint still makes a message an apology, unless configured.
pub const COMPLAINT_DAYS: i64 = 14;

/// Whether an event the profile sent says it is unhappy: a complaint named as such, a text that reads as a
/// complaint, or a low rating (two of five or less; six of ten or less, a detractor).
fn unhappy(event: &Value) -> bool {
    let name = event["event"].as_str().unwrap_or_default();
    let props = &event["properties"];
    if kind::names_a_complaint(name) {
        return true;
    }
    let mut said = String::new();
    what_was_said(props, &mut said);
    if !said.is_empty() && sentiment::analyse(&said).complaint {
        return true;
    }
    let number = |k: &str| props[k].as_f64().or_else(|| props[k].as_str()?.trim().parse().ok());
    let low_of_five = ["rating", "csat", "stars"].iter().filter_map(|k| number(k)).any(|r| (0.0..=2.0).contains(&r));
    let detractor = ["nps", "nps_score"].iter().filter_map(|k| number(k)).any(|r| (0.0..=6.0).contains(&r));
    low_of_five || detractor
}

/// The properties that hold what a person said (a ticket, a chat message, a review).
const TEXT_KEYS: &[&str] = &["text", "message", "comment", "body", "description", "subject", "nội_dung", "内容"];

/// Appends what an event's properties say (its [`TEXT_KEYS`]), a line each.
fn what_was_said(props: &Value, into: &mut String) {
    for t in TEXT_KEYS.iter().filter_map(|k| props[*k].as_str()) {
        into.push_str(t);
        into.push('\n');
    }
}

/// The family names of two characters (复姓) in use today.
const COMPOUND_SURNAMES: [&str; 24] = [
    "欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "尉迟", "公孙", "慕容", "令狐", "长孙", "宇文", "司徒", "夏侯",
    "轩辕", "端木", "独孤", "南宫", "西门", "百里", "呼延", "澹台", "申屠", "钟离",
];

fn is_han(c: char) -> bool {
    matches!(c as u32, 0x3400..=0x9FFF | 0xF900..=0xFAFF)
}

/// The family name of a Chinese name written in characters: a compound surname, or the first character.
fn family_name(full: &str) -> String {
    match COMPOUND_SURNAMES.iter().find(|s| full.starts_with(**s) && full.chars().count() > 2) {
        Some(s) => (*s).to_owned(),
        None => full.chars().next().map(String::from).unwrap_or_default(),
    }
}

/// Family names that open a Vietnamese name written in Latin letters, with or without marks ("Nguyen Van
/// Minh" is called Minh).
const VIETNAMESE_FAMILY_NAMES: [&str; 16] = [
    "nguyen", "tran", "le", "pham", "hoang", "huynh", "phan", "vu", "vo", "dang", "bui", "do", "ho", "ngo", "duong",
    "ly",
];

/// The commonest Chinese family names in pinyin: a name such as "Wang Fang" is written family name first, so
/// the first word is not a first name.
const PINYIN_FAMILY_NAMES: [&str; 40] = [
    "wang", "li", "zhang", "liu", "chen", "yang", "huang", "zhao", "wu", "zhou", "xu", "sun", "ma", "zhu", "hu", "guo",
    "he", "lin", "gao", "luo", "zheng", "liang", "xie", "song", "tang", "han", "feng", "deng", "cao", "peng", "zeng",
    "xiao", "tian", "dong", "pan", "yuan", "cai", "jiang", "ouyang", "zhuge",
];

/// How English copy addresses someone known only by a full name: the first word ("Emma Clarke" is Emma), the
/// last for a Vietnamese name ("Nguyen Van Minh" is Minh), and the whole name for a Chinese one in pinyin
/// ("Wang Fang"), whose first word is the family name.
fn english_address(full: &str) -> Option<String> {
    let words: Vec<&str> = full.split_whitespace().collect();
    let first = crate::text::fold(&words.first()?.to_lowercase());
    if words.len() >= 2 && VIETNAMESE_FAMILY_NAMES.contains(&first.as_str()) {
        return words.last().map(|w| (*w).to_owned());
    }
    if (2..=3).contains(&words.len()) && PINYIN_FAMILY_NAMES.contains(&first.as_str()) {
        return Some(words.join(" "));
    }
    words.first().map(|w| (*w).to_owned())
}

/// Given names that are also words of address (Anh, Em, Chị...): people so named are called by the last two
/// words of their name ("Ngọc Anh", "Tuấn Anh"), since "Chào Anh" reads as a pronoun.
const ADDRESS_LIKE_NAMES: [&str; 9] = ["anh", "em", "chị", "cô", "chú", "bác", "ông", "bà", "út"];

/// The name a Vietnamese full name is called by: its last word, or its last two when the last is a word of
/// address.
fn vietnamese_given_name(full: &str) -> Option<String> {
    let words: Vec<&str> = full.split_whitespace().collect();
    let last = *words.last()?;
    if words.len() >= 2 && ADDRESS_LIKE_NAMES.contains(&last.to_lowercase().as_str()) {
        return Some(words[words.len() - 2..].join(" "));
    }
    Some(last.to_owned())
}

pub(super) fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub(super) fn trait_text(traits: &Value, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| text_of(&traits[*k]))
}

/// Builds the context from the `ai` connector's payload (`request`, `profile`, `event`, `run`, and `history`:
/// the profile's recent events, newest first), with complaints counted for [`COMPLAINT_DAYS`].
pub fn context(input: &Value, now_ms: i64) -> Context {
    context_within(input, now_ms, COMPLAINT_DAYS)
}

/// [`context`], with a complaint among the last `complaint_days` days of history making it an apology.
pub fn context_within(input: &Value, now_ms: i64, complaint_days: i64) -> Context {
    let profile = &input["profile"];
    let traits = &profile["traits"];
    let event = &input["event"];
    let props = &event["properties"];
    let asked = input["request"]["language"].as_str().and_then(Language::from_code);
    let full_name = trait_text(traits, &["name", "full_name", "fullName", "họ_tên", "姓名"]);
    let language = asked
        .or_else(|| trait_text(traits, &["language", "lang"]).and_then(|l| Language::from_code(&l)))
        .or_else(|| profile["locale"].as_str().and_then(|l| Language::from_code(l.split(['-', '_']).next()?)))
        .or_else(|| event["context"]["locale"].as_str().and_then(|l| Language::from_code(l.split(['-', '_']).next()?)))
        .or_else(|| full_name.as_deref().map(text::detect).filter(|l| matches!(l, Language::Vi | Language::Zh)))
        .unwrap_or(Language::En);
    let gender = trait_text(traits, &["gender", "sex", "giới_tính"]).map(|g| g.to_lowercase());
    let male = gender.as_deref().is_some_and(|g| ["male", "m", "nam", "男", "man"].contains(&g));
    let female = gender.as_deref().is_some_and(|g| ["female", "f", "nữ", "nu", "女", "woman"].contains(&g));
    let first = trait_text(traits, &["first_name", "firstName", "given_name", "tên"]);
    let (name, honorific, address) = match language {
        Language::Vi => {
            // Vietnamese names run family, middle, given: people are called by the last word.
            let given = first.or_else(|| full_name.as_deref().and_then(vietnamese_given_name));
            let h = if male {
                Some("anh")
            } else if female {
                Some("chị")
            } else {
                None
            };
            // With no gender known, the name alone (a guess at anh or chị can offend); with no name, Quý khách.
            let address = match (h, &given) {
                (Some(h), Some(n)) => format!("{h} {n}"),
                (None, Some(n)) => n.clone(),
                (Some(h), None) => h.to_owned(),
                (None, None) => "quý khách".to_owned(),
            };
            (given, h.map(str::to_owned), address)
        }
        Language::Zh => {
            // Chinese names run family name first; the honorific follows the family name, which may be two
            // characters (欧阳, 司马, 诸葛). A name written in Latin letters (pinyin, "Wang Fang") is kept as written:
            // which part is the family name cannot be told from it.
            let han = full_name.as_deref().is_some_and(|n| n.chars().next().is_some_and(is_han));
            let family = trait_text(traits, &["last_name", "lastName", "family_name", "姓"])
                .or_else(|| full_name.as_deref().filter(|_| han).map(family_name));
            let h = if male {
                Some("先生")
            } else if female {
                Some("女士")
            } else {
                None
            };
            let address = match (h, &family) {
                (Some(h), Some(f)) => format!("{f}{h}"),
                _ => full_name.clone().unwrap_or_else(|| "尊敬的客户".to_owned()),
            };
            (family, h.map(str::to_owned), address)
        }
        _ => {
            let given = first.or_else(|| full_name.as_deref().and_then(english_address));
            let address = given.clone().unwrap_or_else(|| "there".to_owned());
            (given, None, address)
        }
    };
    let mut top_events: Vec<(String, u64)> = profile["event_counts"]
        .as_object()
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_u64()?))).collect())
        .unwrap_or_default();
    top_events.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    top_events.truncate(5);
    let item = ["item", "product", "product_name", "name", "title", "sản_phẩm", "商品"]
        .iter()
        .find_map(|k| text_of(&props[*k]))
        .or_else(|| props["products"][0]["name"].as_str().map(str::to_owned));
    let intent = event["event"].as_str().or(event["type"].as_str()).unwrap_or("visit").to_owned();
    let last_viewed = trait_text(traits, &["last_viewed_product", "last_viewed"]).or_else(|| item.clone());
    let days_since =
        |v: &Value| v.as_str().and_then(tutti_core::time::parse_timestamp).map(|t| (now_ms - t).div_euclid(DAY_MS));
    let last_seen = days_since(&profile["last_seen"]).unwrap_or(0).max(0);
    let churn_risk = (last_seen as f64 / 60.0).clamp(0.0, 1.0);
    let last_order = days_since(&traits["last_order_at"]);
    let interval =
        traits["reorder_days"].as_i64().or_else(|| traits["reorder_days"].as_str()?.parse().ok()).unwrap_or(30);
    let (need, need_days) = match last_order {
        Some(days) if days >= interval - 3 => (Some("replenish".to_owned()), Some(days)),
        _ if last_seen >= 30 => (Some("win_back".to_owned()), Some(last_seen)),
        _ => (None, None),
    };
    // Recent support and chat text: the event's own text, and the event that last resumed the run.
    let mut said = String::new();
    for source in [props, &input["run"]["last_event"]["properties"]] {
        what_was_said(source, &mut said);
    }
    let sentiment = sentiment::analyse(&said);
    // Earlier events: the newest unhappy one within the window.
    let recent_complaint = input["history"].as_array().into_iter().flatten().find_map(|e| {
        let at = e["timestamp"].as_str().or(e["receivedAt"].as_str()).and_then(tutti_core::time::parse_timestamp)?;
        let days_ago = (now_ms - at).div_euclid(DAY_MS);
        (days_ago <= complaint_days && unhappy(e)).then(|| RecentComplaint {
            event: e["event"].as_str().or(e["type"].as_str()).unwrap_or("event").chars().take(80).collect(),
            days_ago: days_ago.max(0),
        })
    });
    let complained = sentiment.complaint
        || sentiment.score <= -0.5
        || recent_complaint.is_some()
        || kind::names_a_complaint(&intent);
    let prompt = input["request"]["prompt"].as_str().unwrap_or_default();
    let kind = kind::decide(prompt, &intent, need.as_deref(), complained);
    // The levels this kind of message uses, of those the data holds.
    let mut levels = Vec::new();
    if name.is_some() {
        levels.push(Level::Attributes);
    }
    let event_item = item.is_some();
    let viewed_item = !event_item && last_viewed.is_some();
    if viewed_item && matches!(kind, Kind::Recommendation | Kind::AbandonedCart | Kind::Replenishment) {
        levels.push(Level::Behaviour);
    }
    if kind != Kind::Apology && (event_item || kind::of_event(&intent).is_some()) {
        levels.push(Level::Intent);
    }
    if matches!((kind, need.as_deref()), (Kind::Replenishment, Some("replenish")) | (Kind::WinBack, Some("win_back"))) {
        levels.push(Level::Need);
    }
    if kind == Kind::Apology && complained {
        levels.push(Level::Emotion);
    }
    Context {
        language,
        name,
        honorific,
        address,
        top_events,
        last_viewed,
        intent,
        item,
        need,
        need_days,
        churn_risk,
        sentiment,
        recent_complaint,
        kind,
        levels,
    }
}
