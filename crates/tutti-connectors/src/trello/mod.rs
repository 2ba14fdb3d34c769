//! `trello`: cards on the content team's board.
//!
//! Follows Trello's REST API reference (<https://developer.atlassian.com/cloud/trello/rest/api-group-cards/>):
//! - `create_card`: `POST {api_base}/cards` with `idList` (required), `name`, `desc`, `idLabels` (label ids,
//!   comma-separated), `idMembers`, `due` (an ISO 8601 date-time) and `pos` (`top`, `bottom` or a number).
//! - `comment`: `POST {api_base}/cards/{id}/actions/comments` with `text`.
//! - `upsert_card`: one card per `topic_key`. The first action for a topic creates the card (as `create_card`)
//!   and remembers its id in the connector memory; every later one comments on it (`comment`, or else the
//!   `description`), so the tenth report of the same objection extends one task instead of opening ten. Actions
//!   for one topic are serialised, so two at once cannot both create. If the card was deleted on the board, a
//!   new one is created.
//!
//! Credentials go in the `Authorization: OAuth oauth_consumer_key="<key>", oauth_token="<token>"` header, one
//! of the two ways Trello's authorization guide allows
//! (<https://developer.atlassian.com/cloud/trello/guides/rest-api/authorization/>), so they never appear in a
//! URL or a log line. Parameters go in a JSON body. Trello takes no idempotency key.
//!
//! Configuration: `key_env` and `token_env` (names of environment variables), `default_list`, `api_base`
//! (default `https://api.trello.com/1`).

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::CheckedConfig;
use crate::http::{Http, classify, parse_url};
use crate::{
    Action, Context, Delivery, Failure, Kind, Operation, Secret, Sender, Settings, Topics, optional_text, text,
};

mod config;

pub static KIND: Kind = Kind {
    name: "trello",
    channel: "tasks",
    operations: &[
        Operation::taking("create_card", &["list", "name", "description", "labels", "members", "due", "position"]),
        Operation::taking("comment", &["card", "text"]),
        Operation::taking(
            "upsert_card",
            &["topic_key", "comment", "list", "name", "description", "labels", "members", "due", "position"],
        ),
    ],
    default_on: false,
    units: crate::per_action,
    validate: config::validate,
};
impl CheckedConfig for config::Checked {
    fn build(self: Box<Self>, settings: &Settings) -> Arc<dyn Sender> {
        Arc::new(Trello {
            http: Http::new(&settings.allow_private, settings.concurrency),
            topics: Topics::new(KIND.name, self.memory),
            auth: self.auth,
            default_list: self.default_list,
            api_base: self.api_base,
        })
    }
}

struct Trello {
    http: Http,
    topics: Topics,
    auth: Secret,
    default_list: Option<String>,
    api_base: String,
}

/// Trello ids are 24 hexadecimal characters; short links are 8 letters and digits. Nothing else goes into a path.
pub(crate) fn path_id<'a>(value: &'a str, key: &str) -> Result<&'a str, Failure> {
    let ok = !value.is_empty() && value.len() <= 64 && value.bytes().all(|b| b.is_ascii_alphanumeric());
    if ok { Ok(value) } else { Err(Failure::permanent(format!("`{key}` `{value}` is not an id"))) }
}

/// A list of ids given as a list or as comma-separated text, as Trello's comma-separated text.
fn ids(payload: &Value, key: &str) -> Result<Option<String>, Failure> {
    let items: Vec<String> = match payload.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.split(',').map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()).collect(),
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(|s| s.trim().to_owned()).collect(),
        Some(other) => {
            return Err(Failure::permanent(format!("`{key}` must be a list of ids, not {}", crate::kind_of(other))));
        }
    };
    for id in &items {
        path_id(id, key)?;
    }
    Ok((!items.is_empty()).then(|| items.join(",")))
}

impl Trello {
    async fn post(&self, path: &str, body: Value, now: i64) -> Result<Value, Failure> {
        let url = format!("{}{path}", self.api_base);
        let answer =
            self.http.json(hyper::Method::POST, &url, &[("authorization", self.auth.expose())], Some(&body)).await?;
        classify(&answer, now)
    }

    async fn create_card(&self, action: Action<'_>) -> Result<Value, Failure> {
        KIND.check(&action)?;
        self.create(action.payload, action.now).await
    }

    async fn create(&self, p: &Value, now: i64) -> Result<Value, Failure> {
        let list = match optional_text(p, "list")? {
            Some(list) => list,
            None => self
                .default_list
                .as_deref()
                .ok_or_else(|| Failure::permanent("`create_card` needs a `list` (or `default_list`)"))?,
        };
        let mut body = Map::new();
        body.insert("idList".into(), json!(path_id(list, "list")?));
        body.insert("name".into(), json!(text(p, "name", "create_card")?));
        if let Some(desc) = optional_text(p, "description")? {
            // Trello keeps at most 16,384 characters of a description.
            body.insert("desc".into(), json!(crate::http::truncate(desc, 16_384)));
        }
        if let Some(labels) = ids(p, "labels")? {
            body.insert("idLabels".into(), json!(labels));
        }
        if let Some(members) = ids(p, "members")? {
            body.insert("idMembers".into(), json!(members));
        }
        if let Some(due) = optional_text(p, "due")? {
            let at: jiff::Timestamp = due.parse().map_err(|_| {
                Failure::permanent(format!("`due` `{due}` is not a date-time such as 2026-12-01T09:00:00Z"))
            })?;
            body.insert("due".into(), json!(at.to_string()));
        }
        match p.get("position") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s == "top" || s == "bottom" => {
                body.insert("pos".into(), json!(s));
            }
            Some(Value::Number(n)) => {
                body.insert("pos".into(), json!(n));
            }
            Some(_) => return Err(Failure::permanent("`position` must be top, bottom or a number")),
        }
        self.post("/cards", Value::Object(body), now).await
    }

    async fn upsert_card(&self, action: Action<'_>) -> Result<Value, Failure> {
        let p = action.payload;
        let comment = |card: String, report: u64| async move {
            let text = optional_text(p, "comment")?.or(optional_text(p, "description")?).unwrap_or("+1");
            let body = json!({"text": crate::http::truncate(&crate::numbered(report, text), 16_384)});
            self.post(&format!("/cards/{}/actions/comments", path_id(&card, "card")?), body, action.now).await
        };
        KIND.check(&action)?;
        let create = || self.create(p, action.now);
        let up = self
            .topics
            .upsert(
                text(p, "topic_key", "upsert_card")?,
                action.key,
                comment,
                create,
                id_of,
                "Trello answered a card without an id",
            )
            .await?;
        Ok(json!({"card": up.id, "created": up.created, "topic": up.topic, "reports": up.reports, "answer": up.answer}))
    }

    async fn comment(&self, action: Action<'_>) -> Result<Value, Failure> {
        KIND.check(&action)?;
        let card = path_id(text(action.payload, "card", "comment")?, "card")?;
        let text = text(action.payload, "text", "comment")?;
        self.post(&format!("/cards/{card}/actions/comments"), json!({"text": text}), action.now).await
    }
}

impl Sender for Trello {
    fn send<'a>(&'a self, action: Action<'a>) -> Delivery<'a> {
        Box::pin(async move {
            match action.operation {
                "create_card" => self.create_card(action).await,
                "comment" => self.comment(action).await,
                "upsert_card" => self.upsert_card(action).await,
                other => Err(crate::unknown_operation("trello", other)),
            }
        })
    }

    /// `GET /members/me`: the credentials and the host, with nothing written.
    fn health(&self) -> Delivery<'_> {
        Box::pin(async move {
            let url = format!("{}/members/me", self.api_base);
            let answer =
                self.http.json(hyper::Method::GET, &url, &[("authorization", self.auth.expose())], None).await?;
            classify(&answer, 0)
        })
    }
}

/// The id in a create answer.
fn id_of(answer: &Value) -> Option<&str> {
    answer["body"]["id"].as_str()
}
