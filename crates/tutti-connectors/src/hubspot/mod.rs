//! `hubspot`: contacts, notes and tasks in HubSpot's CRM.
//!
//! Follows HubSpot's CRM API v3 (<https://developers.hubspot.com/docs/api/crm/contacts>,
//! <https://developers.hubspot.com/docs/api/crm/notes>, <https://developers.hubspot.com/docs/api/crm/tasks>):
//! - `upsert_contact`: `POST {api_base}/crm/v3/objects/contacts/batch/upsert` with one input
//!   `{"idProperty": "email", "id": <email>, "properties": {...}}`: created when new, updated when known, so a
//!   repeated attempt changes nothing (HubSpot's own idempotency for contacts).
//! - `note`: `POST {api_base}/crm/v3/objects/notes` with `hs_timestamp` and `hs_note_body`, associated with the
//!   contact (`HUBSPOT_DEFINED` association type 202, note to contact).
//! - `task`: `POST {api_base}/crm/v3/objects/tasks` with `hs_timestamp` (the due time), `hs_task_subject`,
//!   `hs_task_body`, `hs_task_status`, `hs_task_priority` and optionally `hubspot_owner_id`, associated with the
//!   contact (type 204, task to contact).
//!
//! Notes and tasks name the contact by `contact_id`, or by `email`, looked up first with
//! `GET /crm/v3/objects/contacts/{email}?idProperty=email`. A private app's access token goes in
//! `Authorization: Bearer`. Rate limits answer 429.
//!
//! Configuration: `token_env`, `api_base` (default `https://api.hubapi.com`).

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::CheckedConfig;
use crate::http::{Http, classify, parse_url};
use crate::{Action, Context, Delivery, Failure, Kind, Operation, Secret, Sender, Settings, optional_text, text};

mod config;

pub static KIND: Kind = Kind {
    name: "hubspot",
    channel: "crm",
    operations: &[
        Operation::taking("upsert_contact", &["email", "properties"]),
        Operation::taking("note", &["contact_id", "email", "body"]),
        Operation::taking("task", &["contact_id", "email", "subject", "body", "due", "priority", "owner_id"]),
    ],
    default_on: false,
    units: crate::per_action,
    validate: config::validate,
};

/// HubSpot-defined association types (<https://developers.hubspot.com/docs/api/crm/associations>).
const NOTE_TO_CONTACT: u32 = 202;
const TASK_TO_CONTACT: u32 = 204;
impl CheckedConfig for config::Checked {
    fn build(self: Box<Self>, settings: &Settings) -> Arc<dyn Sender> {
        Arc::new(Hubspot {
            http: Http::new(&settings.allow_private, settings.concurrency),
            auth: self.auth,
            api_base: self.api_base,
        })
    }
}

struct Hubspot {
    http: Http,
    auth: Secret,
    api_base: String,
}

/// Properties as HubSpot takes them: text values (numbers and booleans written as text).
fn properties(payload: &Value) -> Result<Map<String, Value>, Failure> {
    let mut out = Map::new();
    match payload.get("properties") {
        None | Some(Value::Null) => {}
        Some(Value::Object(props)) => {
            for (key, value) in props {
                let value = match value {
                    Value::Null => continue,
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => {
                        return Err(Failure::permanent(format!(
                            "property `{key}` must be text, a number or a boolean"
                        )));
                    }
                };
                out.insert(key.clone(), json!(value));
            }
        }
        Some(_) => return Err(Failure::permanent("`properties` must be a map of property names to values")),
    }
    Ok(out)
}

fn iso(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map(|t| t.to_string()).unwrap_or_default()
}

impl Hubspot {
    async fn call(&self, method: hyper::Method, path: &str, body: Option<&Value>, now: i64) -> Result<Value, Failure> {
        let url = format!("{}{path}", self.api_base);
        let answer = self.http.json(method, &url, &[("authorization", self.auth.expose())], body).await?;
        classify(&answer, now)
    }

    async fn upsert_contact(&self, action: Action<'_>) -> Result<Value, Failure> {
        let p = action.payload;
        KIND.check(&action)?;
        let email = text(p, "email", "upsert_contact")?.trim().to_lowercase();
        if !email.contains('@') {
            return Err(Failure::permanent(format!("`email` `{email}` is not an email address")));
        }
        let mut props = properties(p)?;
        props.insert("email".into(), json!(email));
        let body = json!({"inputs": [{"idProperty": "email", "id": email, "properties": props}]});
        let result =
            self.call(hyper::Method::POST, "/crm/v3/objects/contacts/batch/upsert", Some(&body), action.now).await?;
        // 207: some inputs failed. With one input, that is this one.
        if result["status"] == json!(207) || result["body"]["numErrors"].as_u64().unwrap_or(0) > 0 {
            let why = result["body"]["errors"][0]["message"].as_str().unwrap_or("the upsert reported an error");
            return Err(Failure::permanent(format!("HubSpot: {why}")));
        }
        Ok(result)
    }

    /// The contact's id: given, or looked up by email.
    async fn contact(&self, payload: &Value, now: i64) -> Result<String, Failure> {
        if let Some(id) = optional_text(payload, "contact_id")? {
            if id.bytes().all(|b| b.is_ascii_digit()) {
                return Ok(id.to_owned());
            }
            return Err(Failure::permanent(format!("`contact_id` `{id}` is not a HubSpot id (digits)")));
        }
        let Some(email) = optional_text(payload, "email")? else {
            return Err(Failure::permanent("name the contact with `contact_id` or `email`"));
        };
        let path = format!(
            "/crm/v3/objects/contacts/{}?idProperty=email",
            crate::http::percent_encode(&email.trim().to_lowercase())
        );
        match self.call(hyper::Method::GET, &path, None, now).await {
            Ok(found) => found["body"]["id"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| Failure::transient("HubSpot answered a contact without an id")),
            Err(Failure::Permanent(e)) if e.starts_with("HTTP 404") => {
                Err(Failure::permanent(format!("HubSpot has no contact with the email {email}")))
            }
            Err(other) => Err(other),
        }
    }

    fn association(contact: &str, kind: u32) -> Value {
        json!([{"to": {"id": contact}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": kind}]}])
    }

    async fn note(&self, action: Action<'_>) -> Result<Value, Failure> {
        let p = action.payload;
        KIND.check(&action)?;
        let body = text(p, "body", "note")?;
        let contact = self.contact(p, action.now).await?;
        let note = json!({
            "properties": {"hs_timestamp": iso(action.now), "hs_note_body": body},
            "associations": Self::association(&contact, NOTE_TO_CONTACT),
        });
        self.call(hyper::Method::POST, "/crm/v3/objects/notes", Some(&note), action.now).await
    }

    async fn task(&self, action: Action<'_>) -> Result<Value, Failure> {
        let p = action.payload;
        KIND.check(&action)?;
        let subject = text(p, "subject", "task")?;
        let due = match optional_text(p, "due")? {
            Some(due) => due
                .parse::<jiff::Timestamp>()
                .map_err(|_| Failure::permanent(format!("`due` `{due}` is not a date-time")))?
                .to_string(),
            None => iso(action.now),
        };
        let mut props = Map::new();
        props.insert("hs_timestamp".into(), json!(due));
        props.insert("hs_task_subject".into(), json!(subject));
        props.insert("hs_task_status".into(), json!("NOT_STARTED"));
        if let Some(body) = optional_text(p, "body")? {
            props.insert("hs_task_body".into(), json!(body));
        }
        if let Some(priority) = optional_text(p, "priority")? {
            let priority = priority.to_ascii_uppercase();
            if !["LOW", "MEDIUM", "HIGH"].contains(&priority.as_str()) {
                return Err(Failure::permanent("`priority` must be low, medium or high"));
            }
            props.insert("hs_task_priority".into(), json!(priority));
        }
        if let Some(owner) = optional_text(p, "owner_id")? {
            props.insert("hubspot_owner_id".into(), json!(owner));
        }
        let contact = self.contact(p, action.now).await?;
        let task = json!({"properties": props, "associations": Self::association(&contact, TASK_TO_CONTACT)});
        self.call(hyper::Method::POST, "/crm/v3/objects/tasks", Some(&task), action.now).await
    }
}

impl Sender for Hubspot {
    fn send<'a>(&'a self, action: Action<'a>) -> Delivery<'a> {
        Box::pin(async move {
            match action.operation {
                "upsert_contact" => self.upsert_contact(action).await,
                "note" => self.note(action).await,
                "task" => self.task(action).await,
                other => Err(crate::unknown_operation("hubspot", other)),
            }
        })
    }

    /// `GET /crm/v3/objects/contacts?limit=1`: the token, its scope and the host, with nothing written.
    fn health(&self) -> Delivery<'_> {
        Box::pin(async move { self.call(hyper::Method::GET, "/crm/v3/objects/contacts?limit=1", None, 0).await })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn emails_are_encoded_for_a_path() {
        assert_eq!(crate::http::percent_encode("an+tag@ví.vn"), "an%2Btag%40v%C3%AD.vn");
    }
}
