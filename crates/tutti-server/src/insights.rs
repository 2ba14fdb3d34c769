//! The admin API for creatives and creative insights: import exports, list and tag creatives, override tags,
//! and the analysis of which traits win where.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};
use tutti_core::ErrorCode;
use tutti_engine::Engine;
use tutti_insights::import::ImportOptions;
use tutti_insights::service::{self, ServiceError};

use crate::admin::{Admin, ApiQuery, bad_query, blocking};
use crate::error::{ApiError, json_body, to_json};

/// Largest CSV accepted through the API; bigger files go through `tutti insights import`, which streams.
const MAX_IMPORT_BYTES: usize = 64 * 1024 * 1024;

fn service_error(e: ServiceError) -> ApiError {
    match e {
        ServiceError::Import(e) => ApiError::new(ErrorCode::InvalidImport, e.to_string()),
        ServiceError::Invalid(message) => ApiError::new(ErrorCode::InvalidRequest, message),
        ServiceError::UnknownCreative(id) => ApiError::new(ErrorCode::UnknownCreative, format!("no creative `{id}`")),
        ServiceError::Store(e) => ApiError::internal("creative store", e),
    }
}

fn store_error(e: tutti_store::StoreError) -> ApiError {
    ApiError::internal("creative store", e)
}

/// Text with a NUL character is refused: no creative holds one (Postgres's text cannot), so none is written.
fn without_nul<'a>(texts: impl IntoIterator<Item = &'a str>) -> Result<(), ApiError> {
    match texts.into_iter().any(|t| t.contains('\0')) {
        true => Err(ApiError::new(ErrorCode::InvalidRequest, "text with a NUL character (U+0000)")),
        false => Ok(()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    layout: Option<String>,
    channel: Option<String>,
    competitor: Option<String>,
}

pub async fn import(
    _: Admin,
    State(engine): State<Arc<Engine>>,
    ApiQuery(q): ApiQuery<ImportQuery>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let layout = q.layout.map(|l| l.parse()).transpose().map_err(|e: String| bad_query(format!("layout: {e}")))?;
    let bytes = axum::body::to_bytes(body, MAX_IMPORT_BYTES).await.map_err(|_| {
        ApiError::new(
            ErrorCode::RequestTooLarge,
            format!("the CSV is larger than {} MiB; import it with `tutti insights import`", MAX_IMPORT_BYTES >> 20),
        )
    })?;
    let options = ImportOptions { layout, channel: q.channel, competitor: q.competitor };
    let summary = blocking(move || {
        let store = engine.insights().creatives();
        let input = std::io::Cursor::new(bytes.to_vec());
        service::import(&*store, Some(engine.insights().tagger()), input, options, &mut |_| {}).map_err(service_error)
    })
    .await?;
    to_json("import summary", &summary)
}

pub async fn list(_: Admin, State(engine): State<Arc<Engine>>) -> Result<Json<Value>, ApiError> {
    let creatives = blocking(move || engine.insights().creatives().creatives().map_err(store_error)).await?;
    Ok(Json(json!({ "creatives": creatives })))
}

pub async fn get(_: Admin, State(engine): State<Arc<Engine>>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let id_for = id.clone();
    let found = blocking(move || engine.insights().creatives().creative(&id_for).map_err(store_error)).await?;
    let creative = found.ok_or_else(|| ApiError::new(ErrorCode::UnknownCreative, format!("no creative `{id}`")))?;
    to_json("creative", &creative)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TagBody {
    #[serde(default)]
    all: bool,
}

pub async fn tag(
    _: Admin,
    State(engine): State<Arc<Engine>>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let request: TagBody =
        if body.iter().all(u8::is_ascii_whitespace) { TagBody::default() } else { json_body(&body)? };
    let tagged = blocking(move || {
        let store = engine.insights().creatives();
        service::tag(&*store, engine.insights().tagger(), request.all).map_err(service_error)
    })
    .await?;
    Ok(Json(json!({ "tagged": tagged })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManualTag {
    value: String,
}

pub async fn set_tag(
    _: Admin,
    State(engine): State<Arc<Engine>>,
    Path((id, name)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let tag: ManualTag = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(ErrorCode::InvalidJson, format!("expected {{\"value\": \"...\"}}: {e}")))?;
    if tag.value.trim().is_empty() || name.trim().is_empty() {
        return Err(ApiError::new(ErrorCode::InvalidJson, "a tag needs a trait name and a non-empty value"));
    }
    without_nul([id.as_str(), &name, &tag.value])?;
    let (id_for, name_for, value) = (id.clone(), name.clone(), tag.value.clone());
    blocking(move || {
        let store = engine.insights().creatives();
        service::set_manual_tag(&*store, &id_for, &name_for, &value).map_err(service_error)
    })
    .await?;
    Ok(Json(json!({ "creative": id, "name": name, "value": tag.value, "source": "manual" })))
}

pub async fn clear_tag(
    _: Admin,
    State(engine): State<Arc<Engine>>,
    Path((id, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    without_nul([id.as_str(), &name])?;
    let (id_for, name_for) = (id.clone(), name.clone());
    let (exists, cleared) = blocking(move || {
        let store = engine.insights().creatives();
        let exists = store.creative(&id_for).map_err(store_error)?.is_some();
        let cleared = exists && store.clear_manual_tag(&id_for, &name_for).map_err(store_error)?;
        Ok((exists, cleared))
    })
    .await?;
    if !exists {
        return Err(ApiError::new(ErrorCode::UnknownCreative, format!("no creative `{id}`")));
    }
    Ok(Json(json!({ "creative": id, "name": name, "cleared": cleared })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InsightsQuery {
    from: Option<String>,
    to: Option<String>,
    threshold: Option<f64>,
}

fn options(q: InsightsQuery) -> Result<tutti_insights::Options, ApiError> {
    let mut options = tutti_insights::Options::for_days(q.from.as_deref(), q.to.as_deref())
        .map_err(|(which, e)| bad_query(format!("{which}: {e}")))?;
    if let Some(t) = q.threshold {
        if !(0.5..1.0).contains(&t) {
            return Err(bad_query("threshold: a probability from 0.5 up to (not including) 1"));
        }
        options.threshold = t;
    }
    Ok(options)
}

/// A response body from what the service returned.
pub async fn report_html(
    _: Admin,
    State(engine): State<Arc<Engine>>,
    ApiQuery(q): ApiQuery<InsightsQuery>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let options = options(q)?;
    let page = blocking(move || {
        let store = engine.insights().creatives();
        let report = service::analyze(&*store, &options).map_err(service_error)?;
        let competitors = service::competitors(&*store).map_err(service_error)?;
        Ok(tutti_insights::render::html(&report, &competitors))
    })
    .await?;
    Ok(([(axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response())
}

pub async fn alerts(
    _: Admin,
    State(engine): State<Arc<Engine>>,
    ApiQuery(q): ApiQuery<InsightsQuery>,
) -> Result<Json<Value>, ApiError> {
    let options = options(q)?;
    let found =
        blocking(move || service::alerts(&*engine.insights().creatives(), &options).map_err(service_error)).await?;
    Ok(Json(json!({ "alerts": found })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PredictBody {
    channel: String,
    #[serde(default)]
    tags: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    headline: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    call_to_action: String,
}

pub async fn predict(
    _: Admin,
    State(engine): State<Arc<Engine>>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let r: PredictBody = json_body(&body)?;
    let prediction = blocking(move || {
        let store = engine.insights().creatives();
        let has_text = !(r.headline.is_empty() && r.body.is_empty() && r.call_to_action.is_empty());
        let text = has_text.then_some(tutti_ai::Text {
            headline: &r.headline,
            body: &r.body,
            call_to_action: &r.call_to_action,
        });
        service::predict(&*store, engine.insights().tagger(), &r.channel, r.tags.clone(), text, &Default::default())
            .map_err(service_error)
    })
    .await?;
    to_json("prediction", &prediction)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetBody {
    channel: String,
    budget: f64,
    campaign: Option<String>,
    #[serde(default = "default_floor")]
    floor: f64,
    #[serde(default)]
    objective: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

fn default_floor() -> f64 {
    0.02
}

/// What a budget request asks for, checked: the split's options and the window of performance it reads.
fn budget_request(body: &[u8]) -> Result<(tutti_insights::budget::BudgetOptions, tutti_insights::Options), ApiError> {
    let r: BudgetBody = json_body(body)?;
    let objective = match r.objective.as_deref() {
        None | Some("conversions") => tutti_insights::budget::Objective::Conversions,
        Some("clicks") => tutti_insights::budget::Objective::Clicks,
        Some(other) => {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                format!("objective `{other}`: clicks or conversions"),
            ));
        }
    };
    if !r.budget.is_finite() || !(0.0..=1.0).contains(&r.floor) {
        return Err(ApiError::new(ErrorCode::InvalidRequest, "budget must be a number and floor a share from 0 to 1"));
    }
    let window = options(InsightsQuery { from: r.from, to: r.to, threshold: None })?;
    let budget_options = tutti_insights::budget::BudgetOptions {
        channel: r.channel,
        campaign: r.campaign,
        budget_micros: (r.budget * 1e6).round() as i64,
        floor: r.floor,
        objective,
        draws: 4_000,
        seed: 1,
    };
    Ok((budget_options, window))
}

/// `POST /api/v1/insights/budget`: a split computed and answered, not kept.
pub async fn budget(
    _: Admin,
    State(engine): State<Arc<Engine>>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let (budget_options, window) = budget_request(&body)?;
    let proposal = blocking(move || {
        service::budget(&*engine.insights().creatives(), &budget_options, &window).map_err(service_error)
    })
    .await?;
    to_json("proposal", &proposal)
}

/// Computes a split and keeps it as proposed by `by`. Blocking.
pub(crate) fn propose(engine: &Engine, by: &str, body: &[u8]) -> Result<Value, ApiError> {
    let (budget_options, window) = budget_request(body)?;
    let proposal = service::budget(&*engine.insights().creatives(), &budget_options, &window).map_err(service_error)?;
    let proposal = serde_json::to_value(&proposal).map_err(|e| ApiError::internal("proposal", e))?;
    Ok(engine.insights().propose_budget(by, proposal)?)
}

/// `GET /api/v1/insights/budget/proposals`: kept proposals, newest first.
pub async fn proposals(_: Admin, State(engine): State<Arc<Engine>>) -> Result<Json<Value>, ApiError> {
    let all = blocking(move || Ok(engine.insights().budget_proposals()?)).await?;
    Ok(Json(json!({"proposals": all})))
}

/// `POST /api/v1/insights/budget/proposals`: a split computed and kept for a person to decide (marketers).
pub async fn keep_proposal(
    admin: Admin,
    State(engine): State<Arc<Engine>>,
    body: axum::body::Bytes,
) -> Result<(axum::http::StatusCode, Json<Value>), ApiError> {
    let by = admin.by();
    let kept = blocking(move || propose(&engine, &by, &body)).await?;
    Ok((axum::http::StatusCode::CREATED, Json(kept)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    #[serde(default)]
    reason: String,
}

/// Decides a kept proposal as a person; the outcome, or why not. Blocking.
pub(crate) fn decide_proposal(
    engine: &Engine,
    id: &str,
    by: &str,
    approve: bool,
    reason: &str,
) -> Result<Value, ApiError> {
    if reason.chars().count() > crate::approvals::MAX_REASON {
        return Err(invalid("`reason` is at most 2,000 characters"));
    }
    engine.insights().decide_budget(id, by, approve, reason.trim()).map_err(|e| match e {
        tutti_engine::BudgetError::Unknown(_) => ApiError::new(ErrorCode::NotFound, e.to_string()),
        tutti_engine::BudgetError::Closed(..) => ApiError::new(ErrorCode::ApprovalClosed, e.to_string()),
        tutti_engine::BudgetError::Engine(e) => e.into(),
    })
}

/// `POST /api/v1/insights/budget/proposals/{id}/approve` and `/reject`: approvers, as themselves.
pub async fn decide(
    admin: Admin,
    State(engine): State<Arc<Engine>>,
    Path((id, verdict)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let crate::admin::Caller::Person(person) = &admin.caller else {
        return Err(ApiError::new(
            ErrorCode::NeedsPerson,
            "a budget is decided by a person: sign in, or use your personal token",
        ));
    };
    let approve = match verdict.as_str() {
        "approve" => true,
        "reject" => false,
        _ => return Err(ApiError::new(ErrorCode::NotFound, "approve or reject")),
    };
    let b: DecisionBody = if body.is_empty() { DecisionBody::default() } else { json_body(&body)? };
    let by = person.email.clone();
    let decided = blocking(move || decide_proposal(&engine, &id, &by, approve, &b.reason)).await?;
    Ok(Json(decided))
}

pub async fn competitors(_: Admin, State(engine): State<Arc<Engine>>) -> Result<Json<Value>, ApiError> {
    let view = blocking(move || service::competitors(&*engine.insights().creatives()).map_err(service_error)).await?;
    Ok(Json(json!({ "traits": view })))
}

pub async fn creatives(
    _: Admin,
    State(engine): State<Arc<Engine>>,
    ApiQuery(q): ApiQuery<InsightsQuery>,
) -> Result<Json<Value>, ApiError> {
    let options = options(q)?;
    let report =
        blocking(move || service::analyze(&*engine.insights().creatives(), &options).map_err(service_error)).await?;
    to_json("report", &report)
}

/// A creative as written through the API (the id is in the path).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreativeBody {
    channel: String,
    #[serde(default)]
    campaign: String,
    #[serde(default)]
    language: String,
    #[serde(default)]
    headline: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    call_to_action: String,
    #[serde(default)]
    landing_url: String,
    /// `ours` (default) or the competitor's name.
    #[serde(default)]
    owner: Option<String>,
    /// `YYYY-MM-DD`.
    #[serde(default)]
    launched: Option<String>,
    /// Tags set by hand: trait -> value.
    #[serde(default)]
    tags: std::collections::BTreeMap<String, String>,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidRequest, message)
}

/// Creates or updates a creative; it is tagged by the local tagger where no tag was given.
pub async fn put_creative(
    _: Admin,
    State(engine): State<Arc<Engine>>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    use tutti_core::creative::{Creative, Owner, Tag};
    let r: CreativeBody = json_body(&body)?;
    if id.trim().is_empty() || id.len() > 256 {
        return Err(invalid("a creative id is 1 to 256 characters"));
    }
    if r.channel.trim().is_empty() {
        return Err(invalid("channel is required"));
    }
    let texts = [&id, &r.channel, &r.campaign, &r.language, &r.headline, &r.body, &r.call_to_action, &r.landing_url];
    without_nul(texts.into_iter().map(String::as_str))?;
    without_nul(r.owner.iter().chain(r.launched.iter()).map(String::as_str))?;
    without_nul(r.tags.iter().flat_map(|(k, v)| [k.as_str(), v.as_str()]))?;
    let launched = r
        .launched
        .as_deref()
        .map(tutti_insights::import::parse_date)
        .transpose()
        .map_err(|e| invalid(format!("launched: {e}")))?;
    let owner = match r.owner.as_deref().map(str::trim) {
        None | Some("") | Some("ours") => Owner::Ours,
        Some(name) => Owner::Competitor(name.to_owned()),
    };
    let creative = Creative {
        id: id.clone(),
        campaign: r.campaign,
        channel: r.channel.trim().to_lowercase(),
        language: r.language,
        headline: r.headline,
        body: r.body,
        call_to_action: r.call_to_action,
        landing_url: r.landing_url,
        owner,
        launched,
        tags: r.tags.into_iter().map(|(k, v)| (k, Tag::manual(v))).collect(),
    };
    let changes = blocking(move || {
        let store = engine.insights().creatives();
        let changes = store.put_creatives(std::slice::from_ref(&creative)).map_err(store_error)?;
        if let Some(stored) = store.creative(&creative.id).map_err(store_error)? {
            let local = service::local_tags(engine.insights().tagger(), &stored);
            let missing = local.into_iter().filter(|(k, _)| !stored.tags.contains_key(k)).collect();
            store.put_tags(&stored.id, &missing).map_err(store_error)?;
        }
        Ok(changes)
    })
    .await?;
    Ok(Json(json!({ "creative": id, "changes": changes })))
}

/// One day of a creative's numbers, as written through the API.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DayBody {
    date: String,
    #[serde(default, deserialize_with = "crate::whole::count")]
    impressions: u64,
    #[serde(default, deserialize_with = "crate::whole::count")]
    clicks: u64,
    #[serde(default, deserialize_with = "crate::whole::count")]
    conversions: u64,
    /// In the account currency.
    #[serde(default)]
    spend: f64,
    #[serde(default)]
    revenue: Option<f64>,
}

/// The most impressions, clicks or conversions one creative may count in a day: far past any real
/// campaign, and small enough that years of days add up without overflow.
const MAX_DAILY_COUNT: u64 = 1_000_000_000_000;

/// Adds or replaces days of a creative's performance: `{"days": [{date, impressions, ...}]}`.
pub async fn post_performance(
    _: Admin,
    State(engine): State<Arc<Engine>>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    use tutti_core::creative::{Daily, Performance};
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Days {
        days: Vec<DayBody>,
    }
    let r: Days = json_body(&body)?;
    let money = |x: f64, what: &str| {
        if (0.0..9.0e12).contains(&x) {
            Ok((x * 1e6).round() as i64)
        } else {
            Err(invalid(format!("{what}: an amount from 0 up to (not including) 9,000,000,000,000")))
        }
    };
    let mut rows = Vec::with_capacity(r.days.len());
    for (n, d) in r.days.into_iter().enumerate() {
        for (what, count) in [("impressions", d.impressions), ("clicks", d.clicks), ("conversions", d.conversions)] {
            if count > MAX_DAILY_COUNT {
                return Err(invalid(format!("days[{n}].{what}: at most 1,000,000,000,000 a day")));
            }
        }
        let date = tutti_insights::import::parse_date(&d.date).map_err(|e| invalid(format!("days[{n}].date: {e}")))?;
        rows.push(Performance {
            creative: id.clone(),
            date,
            numbers: Daily {
                impressions: d.impressions,
                clicks: d.clicks,
                conversions: d.conversions,
                spend_micros: money(d.spend, &format!("days[{n}].spend"))?,
                revenue_micros: d.revenue.map(|x| money(x, &format!("days[{n}].revenue"))).transpose()?,
            },
        });
    }
    let id_for = id.clone();
    let changes = blocking(move || {
        let store = engine.insights().creatives();
        if store.creative(&id_for).map_err(store_error)?.is_none() {
            return Err(ApiError::new(ErrorCode::UnknownCreative, format!("no creative `{id_for}`")));
        }
        store.put_performance(&rows).map_err(store_error)
    })
    .await?;
    Ok(Json(json!({ "creative": id, "changes": changes })))
}
