//! HubSpot's CRM API (`/hubspot/crm/v3/...`).

use axum::http::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};

use super::{HUBSPOT_TOKEN, Outcome, State, header, is_json, next_id, percent_decode, refuse};

pub(super) fn hubspot_error(status: u16, category: &str, message: &str) -> Outcome {
    refuse(status, json!({"status": "error", "category": category, "message": message}), format!("hubspot: {message}"))
}

/// <https://developers.hubspot.com/docs/api/crm/contacts>, notes and tasks: CRM v3 objects.
pub(super) fn hubspot(
    s: &mut State,
    method: &Method,
    rest: &str,
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Outcome {
    if header(headers, "authorization") != format!("Bearer {HUBSPOT_TOKEN}") {
        return hubspot_error(401, "INVALID_AUTHENTICATION", "Authentication credentials not found.");
    }
    if method == Method::GET {
        if rest == "/crm/v3/objects/contacts" {
            return Ok((StatusCode::OK, json!({"results": []})));
        }
        if let Some(key) = rest.strip_prefix("/crm/v3/objects/contacts/") {
            if query != "idProperty=email" {
                return hubspot_error(400, "VALIDATION_ERROR", "contact lookups here are by email");
            }
            let email = percent_decode(key);
            return match s.hubspot_contacts.get(&email) {
                Some(id) => Ok((StatusCode::OK, json!({"id": id, "properties": {"email": email}}))),
                None => hubspot_error(404, "OBJECT_NOT_FOUND", "resource not found"),
            };
        }
        return hubspot_error(404, "OBJECT_NOT_FOUND", "no such path");
    }
    if method != Method::POST || !is_json(headers) {
        return hubspot_error(415, "VALIDATION_ERROR", "Content-Type must be application/json");
    }
    let Ok(Value::Object(args)) = serde_json::from_slice::<Value>(body) else {
        return hubspot_error(400, "VALIDATION_ERROR", "Invalid input JSON");
    };
    let strings = |props: &Value| props.as_object().is_some_and(|p| p.values().all(Value::is_string));
    match rest {
        "/crm/v3/objects/contacts/batch/upsert" => {
            let Some(inputs) = args.get("inputs").and_then(Value::as_array).filter(|i| !i.is_empty() && i.len() <= 100)
            else {
                return hubspot_error(400, "VALIDATION_ERROR", "inputs must hold 1 to 100 records");
            };
            let mut results = Vec::new();
            for input in inputs {
                let (Some("email"), Some(email)) =
                    (input.get("idProperty").and_then(Value::as_str), input.get("id").and_then(Value::as_str))
                else {
                    return hubspot_error(400, "VALIDATION_ERROR", "each input needs idProperty and id");
                };
                if !email.contains('@') || !input.get("properties").is_some_and(strings) {
                    return hubspot_error(400, "VALIDATION_ERROR", "properties must be text values and id an email");
                }
                let known = s.hubspot_contacts.get(email).cloned();
                let id = known.clone().unwrap_or_else(|| next_id(s, 5, false));
                s.hubspot_contacts.insert(email.to_owned(), id.clone());
                results.push(json!({"id": id, "new": known.is_none(), "properties": input["properties"]}));
            }
            Ok((StatusCode::OK, json!({"status": "COMPLETE", "results": results})))
        }
        "/crm/v3/objects/notes" | "/crm/v3/objects/tasks" => {
            let note = rest.ends_with("notes");
            let props = args.get("properties").cloned().unwrap_or(Value::Null);
            if !strings(&props)
                || props
                    .get("hs_timestamp")
                    .and_then(Value::as_str)
                    .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                    .is_none()
            {
                return hubspot_error(400, "VALIDATION_ERROR", "hs_timestamp is required, and properties are text");
            }
            if note && props.get("hs_note_body").is_none() {
                return hubspot_error(400, "VALIDATION_ERROR", "hs_note_body is required");
            }
            if !note {
                let status_ok = props
                    .get("hs_task_status")
                    .and_then(Value::as_str)
                    .is_none_or(|s| ["NOT_STARTED", "COMPLETED", "IN_PROGRESS", "WAITING", "DEFERRED"].contains(&s));
                let priority_ok = props
                    .get("hs_task_priority")
                    .and_then(Value::as_str)
                    .is_none_or(|p| ["LOW", "MEDIUM", "HIGH"].contains(&p));
                if !status_ok || !priority_ok || props.get("hs_task_subject").is_none() {
                    return hubspot_error(400, "VALIDATION_ERROR", "task status, priority or subject invalid");
                }
            }
            let type_id = if note { 202 } else { 204 };
            let associations_ok = args.get("associations").and_then(Value::as_array).is_some_and(|a| {
                a.iter().all(|x| {
                    let to = x["to"]["id"].as_str().unwrap_or("");
                    s.hubspot_contacts.values().any(|id| id == to)
                        && x["types"][0]["associationCategory"] == "HUBSPOT_DEFINED"
                        && x["types"][0]["associationTypeId"] == type_id
                })
            });
            if !associations_ok {
                return hubspot_error(
                    400,
                    "VALIDATION_ERROR",
                    "associations must name existing contacts with the right type",
                );
            }
            let id = next_id(s, 8, false);
            Ok((StatusCode::CREATED, json!({"id": id, "properties": props})))
        }
        _ => hubspot_error(404, "OBJECT_NOT_FOUND", "no such path"),
    }
}
