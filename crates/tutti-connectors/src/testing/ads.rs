//! Ad platforms' management APIs: Meta's campaign and ad set nodes (`/meta-ads/{id}`) and the Google Ads API's
//! search and mutate calls (`/google-ads/customers/{id}/...`), as `crate::ads` cites them. Each holds a few
//! campaigns and ad sets whose state a test reads back ([`super::Vendors::ad_state`]).

use std::collections::BTreeMap;

use axum::http::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};

use super::sms::form;
use super::{
    GOOGLE_AD_GROUP, GOOGLE_ADS_DEVELOPER_TOKEN, GOOGLE_ADS_TOKEN, GOOGLE_CAMPAIGN, GOOGLE_CUSTOMER, META_ADS_TOKEN,
    META_ADSET, META_CAMPAIGN, Outcome, State, header, is_json, refuse,
};

/// What the platforms start with.
pub(super) fn seed() -> BTreeMap<String, Value> {
    let budget = format!("customers/{GOOGLE_CUSTOMER}/campaignBudgets/789");
    BTreeMap::from([
        (format!("meta:{META_ADSET}"), json!({"status": "ACTIVE", "daily_budget": "2000000", "name": "Công thức Tết"})),
        (format!("meta:{META_CAMPAIGN}"), json!({"status": "ACTIVE", "daily_budget": "5000000", "name": "Ưu đãi"})),
        (format!("google:campaign:{GOOGLE_CAMPAIGN}"), json!({"status": "ENABLED", "budget": budget})),
        (budget.clone(), json!({"amount_micros": "3000000000000"})),
        (format!("google:ad_group:{GOOGLE_AD_GROUP}"), json!({"status": "ENABLED"})),
    ])
}

fn meta_error(status: u16, message: &str) -> Outcome {
    refuse(
        status,
        json!({"error": {"message": message, "type": "OAuthException", "code": 100}}),
        format!("meta-ads: {message}"),
    )
}

/// `GET /{id}?fields=...` and `POST /{id}` with `status` or `daily_budget`.
pub(super) fn meta(
    s: &mut State,
    method: &Method,
    rest: &str,
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Outcome {
    if header(headers, "authorization") != format!("Bearer {META_ADS_TOKEN}") {
        return meta_error(401, "Invalid OAuth access token");
    }
    let id = rest.trim_start_matches('/');
    let key = format!("meta:{id}");
    let Some(object) = s.ads.get(&key).cloned() else {
        return meta_error(400, &format!("Unsupported request: object with ID '{id}' does not exist"));
    };
    match *method {
        Method::GET => {
            let fields = query.strip_prefix("fields=").unwrap_or("");
            let mut out = json!({"id": id});
            for f in fields.split(',').filter(|f| !f.is_empty()) {
                if !["name", "status", "daily_budget"].contains(&f) {
                    return meta_error(400, &format!("Tried accessing nonexisting field ({f})"));
                }
                out[f] = object[f].clone();
            }
            Ok((StatusCode::OK, out))
        }
        Method::POST => {
            let f = form(body);
            if f.is_empty() || f.keys().any(|k| k != "status" && k != "daily_budget") {
                return meta_error(400, "Param must be one of status, daily_budget");
            }
            let mut updated = object;
            if let Some(status) = f.get("status") {
                if status != "ACTIVE" && status != "PAUSED" {
                    return meta_error(400, "Param status must be one of {ACTIVE, PAUSED}");
                }
                updated["status"] = json!(status);
            }
            if let Some(budget) = f.get("daily_budget") {
                if budget.is_empty() || !budget.bytes().all(|b| b.is_ascii_digit()) || budget == "0" {
                    return meta_error(400, "Param daily_budget must be a positive integer in minor units");
                }
                updated["daily_budget"] = json!(budget);
            }
            s.ads.insert(key, updated);
            Ok((StatusCode::OK, json!({"success": true})))
        }
        _ => meta_error(405, "method"),
    }
}

fn google_error(status: u16, message: &str) -> Outcome {
    refuse(
        status,
        json!({"error": {"code": status, "message": message, "status": "INVALID_ARGUMENT"}}),
        format!("google-ads: {message}"),
    )
}

/// `googleAds:search`, and `campaigns:mutate`, `adGroups:mutate`, `campaignBudgets:mutate`.
pub(super) fn google(s: &mut State, method: &Method, rest: &str, headers: &HeaderMap, body: &[u8]) -> Outcome {
    if header(headers, "authorization") != format!("Bearer {GOOGLE_ADS_TOKEN}") {
        return refuse(401, json!({"error": {"code": 401, "status": "UNAUTHENTICATED"}}), "google-ads: auth");
    }
    if header(headers, "developer-token") != GOOGLE_ADS_DEVELOPER_TOKEN {
        return google_error(401, "The developer token is not valid");
    }
    let prefix = format!("/customers/{GOOGLE_CUSTOMER}/");
    let Some(call) = rest.strip_prefix(&prefix) else { return google_error(403, "the customer is not accessible") };
    let Ok(v) = serde_json::from_slice::<Value>(body) else { return google_error(400, "the body is not JSON") };
    if *method != Method::POST || !is_json(headers) {
        return google_error(400, "POST JSON");
    }
    if call == "googleAds:search" {
        let query = v["query"].as_str().unwrap_or_default();
        let id = query.rsplit(" = ").next().unwrap_or("").trim();
        let (select_campaign, key) = if query.contains("FROM campaign WHERE campaign.id = ") {
            (true, format!("google:campaign:{id}"))
        } else if query.contains("FROM ad_group WHERE ad_group.id = ") {
            (false, format!("google:ad_group:{id}"))
        } else {
            return google_error(400, "the query is not one this stand-in reads");
        };
        let Some(object) = s.ads.get(&key) else { return Ok((StatusCode::OK, json!({"results": []}))) };
        let row = if select_campaign {
            let budget = object["budget"].as_str().unwrap_or_default().to_owned();
            let amount = s.ads.get(&budget).map(|b| b["amount_micros"].clone()).unwrap_or(Value::Null);
            json!({"campaign": {"resourceName": format!("{prefix}campaigns/{id}").trim_start_matches('/'),
                                "id": id, "status": object["status"], "campaignBudget": budget},
                   "campaignBudget": {"resourceName": budget, "amountMicros": amount}})
        } else {
            json!({"adGroup": {"resourceName": format!("customers/{GOOGLE_CUSTOMER}/adGroups/{id}"), "id": id,
                               "status": object["status"]}})
        };
        return Ok((StatusCode::OK, json!({"results": [row]})));
    }
    let (kind, field, mask) = match call {
        "campaigns:mutate" => ("campaigns", "status", "status"),
        "adGroups:mutate" => ("adGroups", "status", "status"),
        "campaignBudgets:mutate" => ("campaignBudgets", "amountMicros", "amount_micros"),
        _ => return google_error(404, "unknown method"),
    };
    let Some(ops) = v["operations"].as_array().filter(|o| !o.is_empty()) else {
        return google_error(400, "operations is empty");
    };
    let mut results = Vec::new();
    for op in ops {
        let update = &op["update"];
        let resource = update["resourceName"].as_str().unwrap_or_default();
        let Some(id) = resource.strip_prefix(&format!("customers/{GOOGLE_CUSTOMER}/{kind}/")) else {
            return google_error(400, "update.resourceName is not of this service");
        };
        if op["updateMask"] != mask || update.as_object().map(|o| o.len()) != Some(2) {
            return google_error(400, &format!("updateMask must be `{mask}` and the update only that field"));
        }
        let value = &update[field];
        let key = match kind {
            "campaigns" => format!("google:campaign:{id}"),
            "adGroups" => format!("google:ad_group:{id}"),
            _ => resource.to_owned(),
        };
        let ok = match field {
            "status" => value == "ENABLED" || value == "PAUSED",
            _ => value.as_str().is_some_and(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit())),
        };
        if !ok {
            return google_error(400, &format!("{field} is not valid"));
        }
        let Some(object) = s.ads.get_mut(&key) else { return google_error(404, "the resource was not found") };
        object[mask] = value.clone();
        if field == "status" {
            object["status"] = value.clone();
        }
        results.push(json!({"resourceName": resource}));
    }
    Ok((StatusCode::OK, json!({"results": results})))
}
