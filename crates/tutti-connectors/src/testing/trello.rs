//! Trello's REST API (`/trello/1/...`).

use axum::http::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};

use super::{Outcome, State, TRELLO_KEY, TRELLO_LIST, TRELLO_TOKEN, header, is_hex24, is_json, next_id, refuse};

/// <https://developer.atlassian.com/cloud/trello/rest/api-group-cards/>: text errors with 400, 401 and 404.
pub(super) fn trello(s: &mut State, method: &Method, rest: &str, headers: &HeaderMap, body: &[u8]) -> Outcome {
    let expected = format!(r#"OAuth oauth_consumer_key="{TRELLO_KEY}", oauth_token="{TRELLO_TOKEN}""#);
    if header(headers, "authorization") != expected {
        return refuse(401, json!("invalid key"), "trello: authorization");
    }
    if rest == "/members/me" && method == Method::GET {
        return Ok((StatusCode::OK, json!({"id": "5a0000000000000000000001", "username": "tutti"})));
    }
    if method != Method::POST {
        return refuse(404, json!("Cannot GET"), "trello: method");
    }
    if !is_json(headers) {
        return refuse(400, json!("invalid value for idList"), "trello: body is not JSON");
    }
    let Ok(Value::Object(args)) = serde_json::from_slice::<Value>(body) else {
        return refuse(400, json!("invalid value for idList"), "trello: not a JSON object");
    };
    let len_ok = |key: &str| args.get(key).and_then(Value::as_str).is_none_or(|t| t.chars().count() <= 16_384);
    if rest == "/cards" {
        if args.get("idList").and_then(Value::as_str) != Some(TRELLO_LIST) {
            return refuse(400, json!("invalid value for idList"), "trello: idList");
        }
        if !len_ok("name") || !len_ok("desc") {
            return refuse(400, json!("invalid value for desc"), "trello: too long");
        }
        if let Some(due) = args.get("due")
            && due.as_str().and_then(|d| d.parse::<jiff::Timestamp>().ok()).is_none()
        {
            return refuse(400, json!("invalid value for due"), "trello: due");
        }
        for key in ["idLabels", "idMembers"] {
            if let Some(ids) = args.get(key)
                && !ids.as_str().is_some_and(|t| t.split(',').all(is_hex24))
            {
                return refuse(400, json!(format!("invalid value for {key}")), format!("trello: {key}"));
            }
        }
        let id = next_id(s, 24, true);
        let card = json!({"id": id, "idList": TRELLO_LIST, "name": args.get("name").cloned().unwrap_or(json!("")),
            "desc": args.get("desc").cloned().unwrap_or(json!("")), "shortUrl": format!("https://trello.com/c/{}", &id[16..])});
        s.trello_cards.insert(id, card.clone());
        return Ok((StatusCode::OK, card));
    }
    if let Some(card) = rest.strip_prefix("/cards/").and_then(|r| r.strip_suffix("/actions/comments")) {
        if !s.trello_cards.contains_key(card) {
            return refuse(404, json!("The requested resource was not found."), "trello: no such card");
        }
        let Some(text) =
            args.get("text").and_then(Value::as_str).filter(|t| !t.is_empty() && t.chars().count() <= 16_384)
        else {
            return refuse(400, json!("invalid value for text"), "trello: comment text");
        };
        let id = next_id(s, 24, true);
        return Ok((
            StatusCode::OK,
            json!({"id": id, "type": "commentCard", "data": {"text": text, "card": {"id": card}}}),
        ));
    }
    refuse(404, json!("Cannot POST"), "trello: path")
}
