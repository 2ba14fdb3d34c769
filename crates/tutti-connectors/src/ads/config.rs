//! `[connectors.ads]`: the platforms' credentials, and which campaigns or ad sets belong to a topic or carry a
//! creative.

use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Config {
    #[serde(default)]
    meta_token_env: Option<String>,
    #[serde(default = "meta_base")]
    meta_api_base: String,
    /// The ad account's currency: daily budgets are written in its minor units.
    #[serde(default)]
    meta_currency: Option<String>,
    #[serde(default)]
    google_token_env: Option<String>,
    #[serde(default)]
    google_developer_token_env: Option<String>,
    #[serde(default)]
    google_customer_id: Option<String>,
    #[serde(default)]
    google_login_customer_id: Option<String>,
    #[serde(default = "google_base")]
    google_api_base: String,
    /// A topic (as content and creatives are tagged) to the campaigns and ad sets that spend on it.
    #[serde(default)]
    topics: BTreeMap<String, Vec<String>>,
    /// A creative's id (as imported) to the ad set or campaign whose daily budget is its share of a budget split.
    #[serde(default)]
    creatives: BTreeMap<String, String>,
}

fn meta_base() -> String {
    "https://graph.facebook.com/v21.0".into()
}

fn google_base() -> String {
    "https://googleads.googleapis.com/v17".into()
}

pub(super) struct Meta {
    pub auth: Secret,
    pub api_base: String,
    pub currency: Option<String>,
}

pub(super) struct Google {
    pub auth: Secret,
    pub developer_token: Secret,
    pub customer_id: String,
    pub login_customer_id: Option<String>,
    pub api_base: String,
}

pub(super) struct Checked {
    pub meta: Option<Meta>,
    pub google: Option<Google>,
    pub topics: BTreeMap<String, Vec<Target>>,
    pub creatives: BTreeMap<String, Target>,
}

fn customer_id(key: &str, id: &str) -> Result<String, String> {
    let digits: String = id.chars().filter(|c| *c != '-').collect();
    if digits.len() == 10 && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(digits)
    } else {
        Err(format!("`{key}` is the Google Ads customer id, ten digits (123-456-7890)"))
    }
}

pub(super) fn validate(table: &Value, cx: &Context<'_>) -> Result<Box<dyn CheckedConfig>, String> {
    let c: Config = crate::config(table)?;
    let meta = match &c.meta_token_env {
        Some(name) => {
            parse_url(&c.meta_api_base).map_err(|e| format!("`meta_api_base`: {e}"))?;
            if let Some(cur) = &c.meta_currency
                && !tutti_core::money::is_currency(cur)
            {
                return Err("`meta_currency` is the ad account's ISO 4217 currency (VND, USD, ...)".into());
            }
            Some(Meta {
                auth: Secret::derived(format!("Bearer {}", Secret::from_env(cx.env, "meta_token_env", name)?.expose())),
                api_base: c.meta_api_base.trim_end_matches('/').to_owned(),
                currency: c.meta_currency.clone(),
            })
        }
        None => None,
    };
    let google = match (&c.google_token_env, &c.google_developer_token_env, &c.google_customer_id) {
        (Some(token), Some(dev), Some(cid)) => {
            parse_url(&c.google_api_base).map_err(|e| format!("`google_api_base`: {e}"))?;
            Some(Google {
                auth: Secret::derived(format!(
                    "Bearer {}",
                    Secret::from_env(cx.env, "google_token_env", token)?.expose()
                )),
                developer_token: Secret::from_env(cx.env, "google_developer_token_env", dev)?,
                customer_id: customer_id("google_customer_id", cid)?,
                login_customer_id: c
                    .google_login_customer_id
                    .as_deref()
                    .map(|l| customer_id("google_login_customer_id", l))
                    .transpose()?,
                api_base: c.google_api_base.trim_end_matches('/').to_owned(),
            })
        }
        (None, None, None) => None,
        _ => {
            return Err(
                "Google Ads needs `google_token_env`, `google_developer_token_env` and `google_customer_id`".into()
            );
        }
    };
    if meta.is_none() && google.is_none() {
        return Err("give Meta's `meta_token_env`, or Google Ads' keys, or both".into());
    }
    let check = |written: &str| -> Result<Target, String> {
        let target = Target::parse(written)?;
        match target.platform {
            Platform::Meta if meta.is_none() => Err(format!("`{written}` is on Meta, and `meta_token_env` is not set")),
            Platform::Google if google.is_none() => {
                Err(format!("`{written}` is on Google Ads, and its keys are not set"))
            }
            _ => Ok(target),
        }
    };
    let mut topics = BTreeMap::new();
    for (topic, list) in &c.topics {
        let targets = list.iter().map(|t| check(t)).collect::<Result<Vec<_>, _>>()?;
        topics.insert(topic.clone(), targets);
    }
    let mut creatives = BTreeMap::new();
    for (creative, target) in &c.creatives {
        creatives.insert(creative.clone(), check(target)?);
    }
    Ok(Box::new(Checked { meta, google, topics, creatives }))
}
