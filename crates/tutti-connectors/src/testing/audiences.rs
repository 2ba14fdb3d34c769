//! Ad audiences: Meta's Marketing API (`/meta/...`) and Google Ads' Customer Match (`/google/...`).

use axum::http::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};

use super::{AUDIENCE_ID, AUDIENCE_TOKEN, Outcome, State, header, is_json, refuse};

pub(super) fn is_hash(v: &Value) -> bool {
    v.as_str().is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

/// A Custom Audience's users edge (<https://developers.facebook.com/docs/marketing-api/audiences/guides/custom-audiences>):
/// POST adds, DELETE removes; the multi-key schema with SHA-256 hashes, at most 10,000 rows.
pub(super) fn meta(s: &mut State, method: &Method, rest: &str, headers: &HeaderMap, body: &[u8]) -> Outcome {
    let fail = |status: u16, message: &str| {
        refuse(
            status,
            json!({"error": {"message": message, "type": "OAuthException", "code": 100}}),
            format!("meta: {message}"),
        )
    };
    if header(headers, "authorization") != format!("Bearer {AUDIENCE_TOKEN}") {
        return fail(401, "Invalid OAuth access token");
    }
    let Some(id) = rest.strip_suffix("/users") else { return fail(404, "Unknown path") };
    if id != AUDIENCE_ID {
        return fail(400, "Unsupported post request: the audience does not exist");
    }
    let add = match *method {
        Method::POST => true,
        Method::DELETE => false,
        _ => return fail(405, "method"),
    };
    let Ok(v) = serde_json::from_slice::<Value>(body) else { return fail(400, "Invalid JSON") };
    if !is_json(headers) || v["payload"]["schema"] != json!(["EMAIL", "PHONE"]) {
        return fail(400, "payload.schema must list the keys of each row");
    }
    let Some(rows) = v["payload"]["data"].as_array().filter(|d| !d.is_empty() && d.len() <= 10_000) else {
        return fail(400, "payload.data holds 1 to 10,000 rows");
    };
    for row in rows {
        let ok = row
            .as_array()
            .is_some_and(|r| r.len() == 2 && r.iter().all(|x| x == "" || is_hash(x)) && r.iter().any(is_hash));
        if !ok {
            return fail(400, "each row holds one SHA-256 hash (hex) per key, or an empty string");
        }
    }
    let members = s.audiences.entry(id.to_owned()).or_default();
    for row in rows {
        let key = if row[0] != "" { row[0].as_str() } else { row[1].as_str() }.unwrap_or("").to_owned();
        if add {
            members.insert(key);
        } else {
            members.remove(&key);
        }
    }
    Ok((StatusCode::OK, json!({"audience_id": id, "num_received": rows.len(), "num_invalid_entries": 0})))
}

/// Customer Match style: operations with hashed identifiers, one identifier per object.
pub(super) fn google(s: &mut State, method: &Method, rest: &str, headers: &HeaderMap, body: &[u8]) -> Outcome {
    let fail = |message: &str| {
        refuse(400, json!({"error": {"status": "INVALID_ARGUMENT", "message": message}}), format!("google: {message}"))
    };
    if header(headers, "authorization") != format!("Bearer {AUDIENCE_TOKEN}") {
        return refuse(401, json!({"error": {"status": "UNAUTHENTICATED"}}), "google: auth");
    }
    let Some(id) = rest.strip_suffix("/members") else { return fail("unknown path") };
    let Ok(v) = serde_json::from_slice::<Value>(body) else { return fail("invalid JSON") };
    if *method != Method::POST || !is_json(headers) {
        return fail("POST JSON");
    }
    let Some(ops) = v["operations"].as_array().filter(|o| !o.is_empty()) else { return fail("operations is empty") };
    let members = s.audiences.entry(id.to_owned()).or_default();
    for op in ops {
        let (add, ids) = match (op.get("create"), op.get("remove")) {
            (Some(c), None) => (true, c),
            (None, Some(r)) => (false, r),
            _ => return fail("each operation is exactly one of create or remove"),
        };
        let Some(list) = ids["userIdentifiers"].as_array().filter(|l| !l.is_empty()) else {
            return fail("userIdentifiers is empty");
        };
        for ident in list {
            let fields = ident.as_object().map(|o| o.len()).unwrap_or(0);
            let hash = ident.get("hashedEmail").or_else(|| ident.get("hashedPhoneNumber"));
            if fields != 1 || !hash.is_some_and(is_hash) {
                return fail("each UserIdentifier sets exactly one hashed identifier");
            }
        }
        let key = list[0].as_object().and_then(|o| o.values().next()).and_then(Value::as_str).unwrap_or("").to_owned();
        if add {
            members.insert(key);
        } else {
            members.remove(&key);
        }
    }
    Ok((StatusCode::OK, json!({})))
}
