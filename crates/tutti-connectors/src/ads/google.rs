//! The Google Ads API's REST interface (<https://developers.google.com/google-ads/api/rest/overview>):
//! `POST /customers/{customer_id}/googleAds:search` with a GAQL query reads a campaign's status and its budget
//! (`campaign.campaign_budget`, `campaign_budget.amount_micros`) or an ad group's status;
//! `campaigns:mutate`, `adGroups:mutate` and `campaignBudgets:mutate` change them, each operation an `update`
//! with its `resourceName` and an `updateMask` naming the fields (`status`, `amount_micros`). Every call carries
//! the OAuth access token as a bearer, the `developer-token`, and `login-customer-id` when a manager account
//! acts for the customer. A daily budget is `amount_micros` of the campaign's budget (ad groups have none).

use serde_json::{Value, json};

use super::config::Google;
use super::{Change, Level, Target, answer};
use crate::Failure;
use crate::http::Http;

fn headers(g: &Google) -> Vec<(&str, &str)> {
    let mut h = vec![("authorization", g.auth.expose()), ("developer-token", g.developer_token.expose())];
    if let Some(login) = &g.login_customer_id {
        h.push(("login-customer-id", login.as_str()));
    }
    h
}

/// The target's state, and for a campaign its budget's resource name.
pub(super) async fn read(
    http: &Http,
    g: &Google,
    target: &Target,
    now: i64,
) -> Result<(Value, Option<String>), Failure> {
    let query = match target.level {
        Level::Campaign => format!(
            "SELECT campaign.id, campaign.status, campaign.campaign_budget, campaign_budget.amount_micros \
             FROM campaign WHERE campaign.id = {}",
            target.id
        ),
        Level::AdSet => format!("SELECT ad_group.id, ad_group.status FROM ad_group WHERE ad_group.id = {}", target.id),
    };
    let url = format!("{}/customers/{}/googleAds:search", g.api_base, g.customer_id);
    let got = http.json(hyper::Method::POST, &url, &headers(g), Some(&json!({"query": query}))).await?;
    let v = answer(&got, "Google Ads", now)?;
    let Some(row) = v["results"].as_array().and_then(|r| r.first()) else {
        return Err(Failure::permanent(format!("Google Ads has no {target} in customer {}", g.customer_id)));
    };
    Ok(match target.level {
        Level::Campaign => (
            json!({"status": row["campaign"]["status"], "amount_micros": row["campaignBudget"]["amountMicros"]}),
            row["campaign"]["campaignBudget"].as_str().map(str::to_owned),
        ),
        Level::AdSet => (json!({"status": row["adGroup"]["status"]}), None),
    })
}

async fn mutate(http: &Http, g: &Google, service: &str, update: Value, mask: &str, now: i64) -> Result<(), Failure> {
    let url = format!("{}/customers/{}/{service}:mutate", g.api_base, g.customer_id);
    let body = json!({"operations": [{"update": update, "updateMask": mask}]});
    let got = http.json(hyper::Method::POST, &url, &headers(g), Some(&body)).await?;
    answer(&got, "Google Ads", now).map(|_| ())
}

pub(super) async fn apply(
    http: &Http,
    g: &Google,
    target: &Target,
    change: &Change,
    now: i64,
) -> Result<Value, Failure> {
    let (before, budget) = read(http, g, target, now).await?;
    let (service, kind) = match target.level {
        Level::Campaign => ("campaigns", "campaigns"),
        Level::AdSet => ("adGroups", "adGroups"),
    };
    let resource = format!("customers/{}/{kind}/{}", g.customer_id, target.id);
    match change {
        Change::Pause | Change::Resume => {
            let status = if *change == Change::Pause { "PAUSED" } else { "ENABLED" };
            mutate(http, g, service, json!({"resourceName": resource, "status": status}), "status", now).await?;
        }
        Change::DailyBudget(money) => {
            let Some(budget) = budget else {
                return Err(Failure::permanent(format!(
                    "{target}: on Google Ads a daily budget belongs to a campaign, not an ad group"
                )));
            };
            let update = json!({"resourceName": budget, "amountMicros": money.micros.to_string()});
            mutate(http, g, "campaignBudgets", update, "amount_micros", now).await?;
        }
    }
    let (after, _) = read(http, g, target, now).await?;
    Ok(json!({"before": before, "after": after}))
}
