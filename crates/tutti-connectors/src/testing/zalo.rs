//! Zalo: the OAuth token endpoint (`/zalo-oauth/...`), ZNS (`/zalo-zns/...`) and the Official Account API
//! (`/zalo-oa/...`), as `crate::zalo` cites them. Refresh tokens work once; access tokens can be expired by the
//! test ([`super::Vendors::expire_zalo_tokens`]).

use axum::http::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};

use super::sms::form;
use super::{Outcome, State, ZALO_APP_ID, ZALO_APP_SECRET, ZALO_TEMPLATE, header, is_json, next_id, refuse};

/// One message Zalo accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct ZaloSent {
    /// `zns` or `cs`, `transaction`, `promotion`.
    pub kind: String,
    /// The phone (ZNS) or the follower's user id.
    pub to: String,
    pub body: Value,
}

pub(super) fn oauth(s: &mut State, method: &Method, rest: &str, headers: &HeaderMap, body: &[u8]) -> Outcome {
    let fail = |error: i64, why: &str| {
        refuse(
            200,
            json!({"error": error, "error_name": "Invalid request", "error_description": why}),
            format!("zalo oauth: {why}"),
        )
    };
    if *method != Method::POST || rest != "/v4/oa/access_token" {
        return refuse(404, json!("not found"), "zalo oauth: path");
    }
    if header(headers, "secret_key") != ZALO_APP_SECRET {
        return fail(-14002, "invalid secret_key");
    }
    let f = form(body);
    if f.get("app_id").map(String::as_str) != Some(ZALO_APP_ID)
        || f.get("grant_type").map(String::as_str) != Some("refresh_token")
    {
        return fail(-14001, "app_id and grant_type=refresh_token are required");
    }
    let given = f.get("refresh_token").cloned().unwrap_or_default();
    if given != s.zalo_refresh {
        return fail(-14014, "Invalid refresh token");
    }
    let access = format!("zat-{}", next_id(s, 8, true));
    s.zalo_refresh = format!("zrt-{}", next_id(s, 8, true));
    s.zalo_access.push(access.clone());
    s.zalo_refreshes += 1;
    Ok((StatusCode::OK, json!({"access_token": access, "refresh_token": s.zalo_refresh, "expires_in": "90000"})))
}

fn token_ok(s: &State, headers: &HeaderMap) -> bool {
    let token = header(headers, "access_token");
    !token.is_empty() && s.zalo_access.iter().any(|t| t == token)
}

fn zalo_error(error: i64, message: &str) -> Outcome {
    refuse(200, json!({"error": error, "message": message}), format!("zalo: {error} {message}"))
}

pub(super) fn zns(s: &mut State, method: &Method, rest: &str, headers: &HeaderMap, body: &[u8]) -> Outcome {
    if *method != Method::POST || rest != "/message/template" {
        return refuse(404, json!("not found"), "zns: path");
    }
    if !token_ok(s, headers) {
        // Not a refusal of the request's form: Zalo's answer to an expired token.
        return Ok((StatusCode::OK, json!({"error": -124, "message": "Access token is invalid"})));
    }
    let Ok(v) = serde_json::from_slice::<Value>(body) else { return zalo_error(-100, "Invalid parameter") };
    if !is_json(headers) {
        return zalo_error(-100, "Content-Type must be application/json");
    }
    let phone = v["phone"].as_str().unwrap_or_default();
    if !(phone.starts_with("84") && (11..=12).contains(&phone.len()) && phone.bytes().all(|b| b.is_ascii_digit())) {
        return zalo_error(-108, "Phone number is invalid");
    }
    if v["template_id"] != ZALO_TEMPLATE {
        return zalo_error(-112, "Template does not exist");
    }
    if !v["template_data"].as_object().is_some_and(|d| d.values().all(|x| x.is_string() || x.is_number())) {
        return zalo_error(-100, "template_data is an object of the template's parameters");
    }
    let tracking = v["tracking_id"].as_str().unwrap_or_default();
    if tracking.is_empty() || tracking.len() > 48 {
        return zalo_error(-100, "tracking_id is required, at most 48 characters");
    }
    let id = next_id(s, 20, true);
    s.zalo.push(ZaloSent { kind: "zns".into(), to: phone.to_owned(), body: v.clone() });
    Ok((
        StatusCode::OK,
        json!({"error": 0, "message": "Success", "data": {"msg_id": id, "sent_time": "1733472000000"}}),
    ))
}

pub(super) fn oa(s: &mut State, method: &Method, rest: &str, headers: &HeaderMap, body: &[u8]) -> Outcome {
    let Some(kind) = rest.strip_prefix("/v3.0/oa/message/").filter(|k| ["cs", "transaction", "promotion"].contains(k))
    else {
        return refuse(404, json!("not found"), "zalo oa: path");
    };
    if *method != Method::POST {
        return refuse(405, json!("method"), "zalo oa: method");
    }
    if !token_ok(s, headers) {
        return Ok((StatusCode::OK, json!({"error": -216, "message": "Access token is invalid"})));
    }
    let Ok(v) = serde_json::from_slice::<Value>(body) else { return zalo_error(-201, "Invalid parameter") };
    let user = v["recipient"]["user_id"].as_str().unwrap_or_default();
    if user.is_empty() || !user.bytes().all(|b| b.is_ascii_digit()) || !is_json(headers) {
        return zalo_error(-201, "recipient.user_id is required");
    }
    let message = &v["message"];
    let ok = if kind == "cs" {
        message["text"].as_str().is_some_and(|t| !t.is_empty() && t.chars().count() <= 2000)
    } else {
        let payload = &message["attachment"]["payload"];
        message["attachment"]["type"] == "template"
            && payload["template_type"] == kind
            && (payload["language"] == "VI" || payload["language"] == "EN")
            && payload["elements"].as_array().is_some_and(|e| !e.is_empty())
    };
    if !ok {
        return zalo_error(-201, "message is not valid for this kind");
    }
    let id = next_id(s, 20, true);
    s.zalo.push(ZaloSent { kind: kind.to_owned(), to: user.to_owned(), body: v.clone() });
    Ok((StatusCode::OK, json!({"error": 0, "message": "Success", "data": {"message_id": id, "user_id": user}})))
}
