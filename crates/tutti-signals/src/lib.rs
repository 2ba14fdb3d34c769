//! Inbound webhooks: signals from the CRM, the support desk, the content calendar and the email provider,
//! turned into Tutti events.
//!
//! A hook is one YAML file (in the hooks directory), served at `POST /hooks/{source}`:
//!
//! ```yaml
//! source: crm
//! verify: { scheme: hubspot_v3, secret_env: HUBSPOT_CLIENT_SECRET }
//! builtin: crm-objection        # the events of a shipped mapping, or `events:` of one's own
//! ```
//!
//! ```yaml
//! source: support
//! verify: { scheme: hmac_sha256, secret_env: DESK_SECRET, header: X-Signature }
//! items: tickets                # where the items are: a list mapped one by one, or one object (default: the
//!                               # payload, or each of its items when it is a list)
//! events:
//!   - when: '"complaint" in item.tags'          # CEL over `item` and `payload`
//!     event: Complaint Filed                    # Liquid over `item` and `payload`
//!     email: '{{ item.requester.email }}'
//!     message_id: 'ticket-{{ item.id }}'        # the vendor's retries of one delivery are stored once
//!     properties: { ticket_id: '{{ item.id }}', subject: '{{ item.subject }}' }
//! ```
//!
//! Each event names a person by `user_id`, `anonymous_id`, `email` or `phone` (an email or a phone alone
//! becomes the anonymous id `email:<address>` / `phone:<number>` with the trait, so identity resolution
//! attaches it to whoever owns it); `type: identify` sets `traits` instead of tracking. Without a
//! `message_id`, one is derived from the source and the item, so a vendor retrying the same delivery changes
//! nothing.
//!
//! A form body (Twilio's callbacks) is mapped as an object of its fields, and a `GET` without a body (eSMS's
//! callbacks) as its query's parameters; `answer:` adds members to the answer of an accepted delivery.
//!
//! Signatures ([`Verify`]): HubSpot's v3, Slack's v0, Zendesk's, a plain HMAC-SHA256 of the body (GitHub and
//! Shopify style), Tutti's own `t=,v1=`, Twilio's, Zalo's, and a `token` in the query for providers that sign
//! nothing; all compared in constant time and, where the vendor signs a
//! timestamp, refused when older than five minutes. `none` must be written out.

mod conversation;
pub mod verify;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tutti_core::condition::Condition;
use tutti_core::template::Template;
use tutti_core::yaml::{Positions, push_token};
use tutti_flows::def::Payload;

pub use conversation::MAX_CONVERSATIONS;
pub use verify::Verify;

/// The mappings shipped with Tutti, by name.
pub const BUILTINS: [(&str, &str); 9] = [
    ("crm-objection", include_str!("builtin/crm-objection.yaml")),
    ("support-complaint", include_str!("builtin/support-complaint.yaml")),
    ("content-published", include_str!("builtin/content-published.yaml")),
    ("content-engagement", include_str!("builtin/content-engagement.yaml")),
    ("email-events", include_str!("builtin/email-events.yaml")),
    ("sms-twilio", include_str!("builtin/sms-twilio.yaml")),
    ("sms-esms", include_str!("builtin/sms-esms.yaml")),
    ("sms-alibaba", include_str!("builtin/sms-alibaba.yaml")),
    ("zalo-events", include_str!("builtin/zalo-events.yaml")),
];

/// A compiled hook: where it is served, how requests are verified, and how payloads become events.
#[derive(Debug)]
pub struct Hook {
    pub source: String,
    pub verify: Verify,
    /// A dot path to the list of items inside the payload.
    items: Option<String>,
    /// Members added to the answer of an accepted delivery, for vendors that read it (Alibaba Cloud wants
    /// `{"code": 0}`, or it pushes again).
    pub answer: Option<Map<String, Value>>,
    events: Vec<EventMap>,
    /// What becomes a conversation for the miner (`conversation.rs`).
    conversations: Vec<conversation::ConversationMap>,
}

#[derive(Debug)]
struct EventMap {
    when: Option<Condition>,
    identify: bool,
    event: Option<Template>,
    user_id: Option<Template>,
    anonymous_id: Option<Template>,
    email: Option<Template>,
    phone: Option<Template>,
    message_id: Option<Template>,
    timestamp: Option<Template>,
    properties: Option<Payload>,
    traits: Option<Payload>,
    /// The `properties` and `traits` as written, to keep the type of values copied whole (see [`typed`]).
    properties_source: Value,
    traits_source: Value,
}

/// A problem in a hook file, located.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{origin}:{line}:{column}: {message}")]
pub struct HookProblem {
    pub origin: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

struct Cx<'a> {
    origin: &'a str,
    positions: &'a Positions,
    problems: Vec<HookProblem>,
}

impl Cx<'_> {
    fn problem(&mut self, pointer: &str, message: impl Into<String>) {
        let pos = self.positions.of(pointer);
        self.at(pos, message);
    }

    /// A problem with a key itself (an unknown one): located at the key, not its value.
    fn key_problem(&mut self, pointer: &str, message: impl Into<String>) {
        let pos = self.positions.key(pointer);
        self.at(pos, message);
    }

    fn at(&mut self, pos: tutti_core::yaml::Pos, message: impl Into<String>) {
        self.problems.push(HookProblem {
            origin: self.origin.to_owned(),
            line: pos.line,
            column: pos.column,
            message: message.into(),
        });
    }

    fn template(&mut self, value: Option<&Value>, pointer: &str) -> Option<Template> {
        match value? {
            Value::String(s) => match Template::parse(s) {
                Ok(t) => Some(t),
                Err(e) => {
                    self.problem(pointer, format!("template: {e}"));
                    None
                }
            },
            Value::Number(n) => Template::parse(&n.to_string()).ok(),
            _ => {
                self.problem(pointer, "must be text (a Liquid template)");
                None
            }
        }
    }

    /// A mapping's `when`: a CEL condition, compiled.
    fn condition(&mut self, value: Option<&Value>, pointer: &str) -> Option<Condition> {
        match value? {
            Value::String(source) => match Condition::compile(source) {
                Ok(c) => Some(c),
                Err(e) => {
                    self.problem(pointer, format!("condition: {e}"));
                    None
                }
            },
            _ => {
                self.problem(pointer, "`when` is a CEL condition (text)");
                None
            }
        }
    }

    fn payload(&mut self, value: &Value, pointer: &str) -> Option<Payload> {
        Some(match value {
            Value::String(s) if s.contains("{{") || s.contains("{%") => Payload::Text(match Template::parse(s) {
                Ok(t) => t,
                Err(e) => {
                    self.problem(pointer, format!("template: {e}"));
                    return None;
                }
            }),
            Value::Array(items) => Payload::Array(
                items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, v)| self.payload(v, &push_token(pointer, &i.to_string())))
                    .collect(),
            ),
            Value::Object(members) => Payload::Object(
                members
                    .iter()
                    .filter_map(|(k, v)| Some((k.clone(), self.payload(v, &push_token(pointer, k))?)))
                    .collect(),
            ),
            other => Payload::Literal(other.clone()),
        })
    }
}

fn only(cx: &mut Cx<'_>, object: &Map<String, Value>, pointer: &str, known: &[&str]) {
    for key in object.keys() {
        if !known.contains(&key.as_str()) {
            cx.key_problem(
                &push_token(pointer, key),
                format!("unknown key `{key}`; expected one of {}", known.join(", ")),
            );
        }
    }
}

/// Reads a hook file. `origin` names it in problems; `env` gives the verification secret.
pub fn compile(origin: &str, source: &str, env: tutti_core::secret::Env<'_>) -> Result<Hook, Vec<HookProblem>> {
    let at = |message: String| vec![HookProblem { origin: origin.into(), line: 1, column: 1, message }];
    let (doc, positions) = tutti_core::yaml::load(source).map_err(|e| {
        vec![HookProblem { origin: origin.into(), line: e.pos.line, column: e.pos.column, message: e.message }]
    })?;
    let Value::Object(top) = &doc else { return Err(at("a hook file is a map".into())) };
    let mut cx = Cx { origin, positions: &positions, problems: Vec::new() };
    only(&mut cx, top, "", &["source", "verify", "builtin", "items", "events", "conversations", "answer"]);
    let source_name = match top.get("source").and_then(Value::as_str) {
        Some(s)
            if !s.is_empty()
                && s.len() <= 64
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            s.to_owned()
        }
        _ => {
            cx.problem(
                "/source",
                "`source` is required: letters, digits, `-` and `_` (it is the path /hooks/{source})",
            );
            String::new()
        }
    };
    // A built-in lends its events, items and default verification; the file's own keys win.
    let builtin = match top.get("builtin") {
        None => None,
        Some(Value::String(name)) => match BUILTINS.iter().find(|(n, _)| n == name) {
            Some((_, text)) => Some(tutti_core::yaml::load(text).expect("the shipped mappings are valid YAML")),
            None => {
                let names: Vec<&str> = BUILTINS.iter().map(|(n, _)| *n).collect();
                cx.problem("/builtin", format!("no built-in mapping `{name}`; there are {}", names.join(", ")));
                None
            }
        },
        Some(_) => {
            cx.problem("/builtin", "`builtin` names a shipped mapping");
            None
        }
    };
    let verify_value =
        top.get("verify").cloned().or_else(|| builtin.as_ref().and_then(|(b, _)| b.get("verify").cloned()));
    let verify = match verify_value {
        Some(v) => match Verify::from_value(&v, env) {
            Ok(v) => Some(v),
            Err(e) => {
                cx.problem("/verify", e);
                None
            }
        },
        None => {
            cx.problem("", "`verify` is required: a signature scheme with its secret, or `verify: none` said outright");
            None
        }
    };
    let (events_value, events_pointer, items_value) = match (top.get("events"), &builtin) {
        (Some(events), _) => (Some(events.clone()), "/events", top.get("items").cloned()),
        (None, Some((b, _))) => {
            (b.get("events").cloned(), "/builtin", top.get("items").cloned().or_else(|| b.get("items").cloned()))
        }
        (None, None) if top.contains_key("conversations") => (None, "", top.get("items").cloned()),
        (None, None) => {
            cx.problem("", "give `events` (the mapping), `conversations`, or `builtin` (a shipped one)");
            (None, "", None)
        }
    };
    let (conversations_value, conversations_pointer) = match (top.get("conversations"), &builtin) {
        (Some(c), _) => (Some(c.clone()), "/conversations"),
        (None, Some((b, _))) => (b.get("conversations").cloned(), "/builtin"),
        (None, None) => (None, ""),
    };
    let answer = match top.get("answer").or_else(|| builtin.as_ref().and_then(|(b, _)| b.get("answer"))) {
        None => None,
        Some(Value::Object(o)) => Some(o.clone()),
        Some(_) => {
            cx.problem("/answer", "`answer` is a map of members added to the answer (such as `{code: 0}`)");
            None
        }
    };
    let items = match items_value {
        None => None,
        Some(Value::String(path)) if !path.is_empty() => Some(path),
        Some(_) => {
            cx.problem("/items", "`items` is a dot path to a list inside the payload, such as `data.events`");
            None
        }
    };
    let mut events = Vec::new();
    // A built-in's own positions are not the file's: its problems (none, as shipped) would point at `builtin`.
    match events_value {
        Some(Value::Array(list)) if !list.is_empty() => {
            for (i, e) in list.iter().enumerate() {
                let pointer = if events_pointer == "/events" { format!("/events/{i}") } else { "/builtin".into() };
                if let Some(map) = event_map(&mut cx, e, &pointer) {
                    events.push(map);
                }
            }
        }
        Some(_) => cx.problem(events_pointer, "`events` is a list of event mappings"),
        None => {}
    }
    let mut conversations = Vec::new();
    match conversations_value {
        Some(Value::Array(list)) if !list.is_empty() => {
            for (i, c) in list.iter().enumerate() {
                let pointer = match conversations_pointer {
                    "/conversations" => format!("/conversations/{i}"),
                    other => other.to_owned(),
                };
                if let Some(map) = conversation::conversation_map(&mut cx, c, &pointer) {
                    conversations.push(map);
                }
            }
        }
        Some(_) => cx.problem(conversations_pointer, "`conversations` is a list of conversation mappings"),
        None => {}
    }
    if !cx.problems.is_empty() {
        return Err(cx.problems);
    }
    Ok(Hook { source: source_name, verify: verify.expect("no problems"), items, answer, events, conversations })
}

const EVENT_KEYS: [&str; 11] = [
    "when",
    "type",
    "event",
    "user_id",
    "anonymous_id",
    "email",
    "phone",
    "message_id",
    "timestamp",
    "properties",
    "traits",
];

fn event_map(cx: &mut Cx<'_>, value: &Value, pointer: &str) -> Option<EventMap> {
    let Value::Object(o) = value else {
        cx.problem(pointer, "an event mapping is a map");
        return None;
    };
    only(cx, o, pointer, &EVENT_KEYS);
    let at = |key: &str| push_token(pointer, key);
    let when = cx.condition(o.get("when"), &at("when"));
    let identify = match o.get("type").and_then(Value::as_str) {
        None | Some("track") => false,
        Some("identify") => true,
        Some(other) => {
            cx.problem(&at("type"), format!("`type` is track or identify, not `{other}`"));
            false
        }
    };
    let event = cx.template(o.get("event"), &at("event"));
    if !identify && event.is_none() {
        cx.problem(pointer, "a track mapping needs `event` (the event's name)");
    }
    let ids = ["user_id", "anonymous_id", "email", "phone"];
    if !ids.iter().any(|k| o.contains_key(*k)) {
        cx.problem(pointer, "name the person: `user_id`, `anonymous_id`, `email` or `phone`");
    }
    let properties = o.get("properties").and_then(|v| {
        if v.is_object() {
            cx.payload(v, &at("properties"))
        } else {
            cx.problem(&at("properties"), "`properties` is a map");
            None
        }
    });
    let traits = o.get("traits").and_then(|v| {
        if v.is_object() {
            cx.payload(v, &at("traits"))
        } else {
            cx.problem(&at("traits"), "`traits` is a map");
            None
        }
    });
    Some(EventMap {
        when,
        identify,
        event,
        user_id: cx.template(o.get("user_id"), &at("user_id")),
        anonymous_id: cx.template(o.get("anonymous_id"), &at("anonymous_id")),
        email: cx.template(o.get("email"), &at("email")),
        phone: cx.template(o.get("phone"), &at("phone")),
        message_id: cx.template(o.get("message_id"), &at("message_id")),
        timestamp: cx.template(o.get("timestamp"), &at("timestamp")),
        properties,
        traits,
        properties_source: o.get("properties").cloned().unwrap_or(Value::Null),
        traits_source: o.get("traits").cloned().unwrap_or(Value::Null),
    })
}

/// A value written as one bare reference (`'{{ item.organic_reach }}'`) keeps the referenced value's type:
/// a number stays a number, a list a list, so conditions over it compare as they should. Anything else (text
/// around the tag, a filter) is the rendered text.
fn typed(source: &Value, rendered: &mut Value, vars: &[(&str, &Value)]) {
    match (source, rendered) {
        (Value::String(text), rendered) => {
            let Some(path) = text.trim().strip_prefix("{{").and_then(|t| t.strip_suffix("}}")).map(str::trim) else {
                return;
            };
            let mut parts = path.split('.');
            let Some(root) = parts.next() else { return };
            if !path.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '.') {
                return;
            }
            let Some((_, mut at)) = vars.iter().find(|(name, _)| *name == root).map(|(n, v)| (*n, *v)) else { return };
            for part in parts {
                match at.get(part) {
                    Some(next) => at = next,
                    None => return,
                }
            }
            if !at.is_string() && !at.is_null() {
                *rendered = at.clone();
            }
        }
        (Value::Object(sources), Value::Object(values)) => {
            for (key, value) in values.iter_mut() {
                if let Some(source) = sources.get(key) {
                    typed(source, value, vars);
                }
            }
        }
        (Value::Array(sources), Value::Array(values)) => {
            for (source, value) in sources.iter().zip(values.iter_mut()) {
                typed(source, value, vars);
            }
        }
        _ => {}
    }
}

/// A mapping's template rendered for item `index`, trimmed; `None` when there is none or it renders empty.
fn render_text(t: Option<&Template>, vars: &[(&str, &Value)], index: usize) -> Result<Option<String>, MapError> {
    match t {
        None => Ok(None),
        Some(t) => {
            let text = t.render(vars).map_err(|e| MapError(format!("item {index}: {e}")))?;
            let text = text.trim();
            Ok((!text.is_empty()).then(|| text.to_owned()))
        }
    }
}

/// A time as vendors send it: seconds or milliseconds since the epoch become RFC 3339 (a number out of range
/// becomes `invalid`, which the event's or conversation's own check refuses); any other text is kept for that
/// check to read.
fn time_text(ts: String) -> String {
    match ts.parse::<i64>() {
        Ok(n) if n > 100_000_000_000 => tutti_core::time::format_timestamp(n),
        Ok(n) => tutti_core::time::format_timestamp(n.saturating_mul(1000)),
        Err(_) => ts,
    }
}

/// Why a payload could not be mapped.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct MapError(pub String);

/// The most events one delivery may produce.
pub const MAX_EVENTS: usize = 2_500;

impl Hook {
    /// The Segment events (JSON, ready for the tracking path's validation) a payload maps to. Items no mapping
    /// matches produce nothing; an item that matches but names nobody is an error naming the item.
    pub fn apply(&self, payload: &Value) -> Result<Vec<Value>, MapError> {
        let items = self.items_of(payload)?;
        let mut out = Vec::new();
        for (index, item) in items.iter().enumerate() {
            let vars: [(&str, &Value); 2] = [("item", item), ("payload", payload)];
            for (m, map) in self.events.iter().enumerate() {
                if let Some(when) = &map.when {
                    match when.evaluate(&vars) {
                        Ok(true) => {}
                        Ok(false) => continue,
                        // A condition that cannot be decided on this item (a missing field) does not match it.
                        Err(_) => continue,
                    }
                }
                out.push(self.event(map, m, index, item, &vars)?);
                if out.len() > MAX_EVENTS {
                    return Err(MapError(format!("one delivery may produce at most {MAX_EVENTS} events")));
                }
            }
        }
        Ok(out)
    }

    /// The items a payload holds: the list or object at `items`, else the payload's own items (a list) or the
    /// payload.
    fn items_of<'p>(&self, payload: &'p Value) -> Result<Vec<&'p Value>, MapError> {
        Ok(match &self.items {
            Some(path) => {
                let mut at = payload;
                for part in path.split('.') {
                    at = at.get(part).ok_or_else(|| MapError(format!("the payload has no `{path}`")))?;
                }
                match at {
                    Value::Array(list) => list.iter().collect(),
                    Value::Object(_) => vec![at],
                    _ => return Err(MapError(format!("`{path}` in the payload is not a list or an object"))),
                }
            }
            None => match payload {
                Value::Array(list) => list.iter().collect(),
                other => vec![other],
            },
        })
    }

    fn event(
        &self,
        map: &EventMap,
        m: usize,
        index: usize,
        item: &Value,
        vars: &[(&str, &Value)],
    ) -> Result<Value, MapError> {
        let render = |t: &Option<Template>| render_text(t.as_ref(), vars, index);
        let mut event = Map::new();
        event.insert("type".into(), json!(if map.identify { "identify" } else { "track" }));
        if let Some(name) = render(&map.event)? {
            event.insert("event".into(), json!(name));
        } else if !map.identify {
            return Err(MapError(format!("item {index}: the event name rendered empty")));
        }
        let email = render(&map.email)?;
        let phone = render(&map.phone)?;
        let user_id = render(&map.user_id)?;
        let anonymous_id = render(&map.anonymous_id)?
            .or_else(|| {
                if user_id.is_none() { email.as_ref().map(|e| format!("email:{}", e.to_lowercase())) } else { None }
            })
            .or_else(|| if user_id.is_none() { phone.as_ref().map(|p| format!("phone:{p}")) } else { None });
        if user_id.is_none() && anonymous_id.is_none() {
            return Err(MapError(format!(
                "item {index}: the mapping named nobody (user_id, anonymous_id, email and phone all empty)"
            )));
        }
        if let Some(u) = user_id {
            event.insert("userId".into(), json!(u));
        }
        if let Some(a) = anonymous_id {
            event.insert("anonymousId".into(), json!(a));
        }
        let mut traits = match &map.traits {
            Some(t) => t.render(vars).map_err(|e| MapError(format!("item {index}: {e}")))?,
            None => json!({}),
        };
        typed(&map.traits_source, &mut traits, vars);
        for (key, value) in [("email", email), ("phone", phone)] {
            if let (Some(value), Some(object)) = (value, traits.as_object_mut()) {
                object.entry(key).or_insert(json!(value));
            }
        }
        if let Some(p) = &map.properties {
            let mut properties = p.render(vars).map_err(|e| MapError(format!("item {index}: {e}")))?;
            typed(&map.properties_source, &mut properties, vars);
            event.insert("properties".into(), properties);
        }
        let has_traits = traits.as_object().is_some_and(|o| !o.is_empty());
        let mut context = json!({"source": format!("hooks/{}", self.source)});
        if map.identify {
            event.insert("traits".into(), traits);
        } else if has_traits {
            context["traits"] = traits;
        }
        event.insert("context".into(), context);
        if let Some(ts) = render(&map.timestamp)? {
            event.insert("timestamp".into(), json!(time_text(ts)));
        }
        let message_id = match render(&map.message_id)? {
            Some(id) => format!("hook:{}:{id}", self.source),
            None => {
                let digest = Sha256::digest(format!("{}\0{m}\0{item}", self.source).as_bytes());
                let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
                format!("hook:{}:{hex}", self.source)
            }
        };
        event.insert("messageId".into(), json!(message_id));
        Ok(Value::Object(event))
    }
}

#[cfg(test)]
mod tests;
