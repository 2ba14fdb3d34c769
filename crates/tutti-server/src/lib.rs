//! Tutti's HTTP surface. [`app`] builds the one router that both `tutti serve` and the tests use.
//!
//! Handlers are thin: authenticate in an extractor, validate, hand to the engine, answer.

pub mod admin;
pub mod approvals;
pub mod broadcasts;
pub mod console;
pub mod conversations;
mod cors;
pub mod delivery;
pub mod error;
pub mod flows;
pub mod insights;
pub mod people;
pub mod plans;
pub mod questions;
pub mod sessions;
pub mod tokens;
pub mod tracking;
pub mod whole;
pub mod wire;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use serde_json::json;
use tutti_core::{ErrorCode, EventType};
use tutti_engine::Engine;

use crate::error::ApiError;

fn single(kind: EventType) -> axum::routing::MethodRouter<Arc<Engine>> {
    post(move |State(engine): State<Arc<Engine>>, headers: HeaderMap, body: Body| async move {
        tracking::single(engine, kind, headers, body).await
    })
}

async fn batch(State(engine): State<Arc<Engine>>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    tracking::batch(engine, headers, body).await
}

/// Public, for load balancers and orchestrators: 200 when the engine can do its work, 503 with the reason
/// when the processor is stopped, stalled or behind (see `Engine::health`).
async fn healthz(State(engine): State<Arc<Engine>>) -> Response {
    match engine.health() {
        Ok(()) => axum::Json(json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")})).into_response(),
        Err(reason) => (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"status": "unavailable", "reason": reason, "version": env!("CARGO_PKG_VERSION")})),
        )
            .into_response(),
    }
}

/// The OpenAPI 3.1 description of every route, kept in `crates/tutti-server/openapi.json`.
pub const OPENAPI: &str = include_str!("../openapi.json");

async fn openapi() -> Response {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(ErrorCode::MethodNotAllowed, "this route does not accept that method")
}

/// What a process of one role does not serve answers 404 with the reason: an intake serves only the tracking
/// API, a worker everything else; `/healthz` and `/metrics` are everyone's.
async fn role_routes(
    State(engine): State<Arc<Engine>>,
    request: axum::http::Request<Body>,
    next: axum::middleware::Next,
) -> Response {
    let path = request.uri().path();
    let tracking = path.starts_with("/v1/");
    let role = engine.config.server.role;
    if path != "/healthz" && path != "/metrics" {
        if tracking && !role.takes_events() {
            let why = "this process is a worker: send events to an intake (tutti serve --role intake or all)";
            return ApiError::new(ErrorCode::NotFound, why).into_response();
        }
        if !tracking && !role.processes() {
            let why = "this process is an intake: it serves only the tracking API (/v1/*)";
            return ApiError::new(ErrorCode::NotFound, why).into_response();
        }
    }
    next.run(request).await
}

/// The router: tracking API, admin API, health and metrics.
pub fn app(engine: Arc<Engine>) -> Router {
    let mut router = Router::new();
    for kind in EventType::ALL {
        router = router.route(&format!("/v1/{kind}"), single(kind));
    }
    router
        .route("/v1/batch", post(batch))
        .route("/v1/import", post(batch))
        .route("/api/v1/profiles/{key}", get(admin::get_profile).delete(admin::delete_profile))
        .route("/api/v1/profiles/{key}/events", get(admin::profile_events))
        .route("/api/v1/profiles/{key}/merges", get(admin::profile_merges))
        .route("/api/v1/profiles/{key}/segments", get(admin::profile_segments))
        .route("/api/v1/deliveries", get(delivery::deliveries))
        .route("/api/v1/events", get(admin::events))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/schemas/{name}", get(flows::schema))
        .route("/api/v1/runs", get(flows::runs))
        .route("/api/v1/outbox", get(flows::outbox))
        .route("/api/v1/decide", get(delivery::decide))
        .route("/api/v1/connectors", get(delivery::connectors))
        .route("/api/v1/connectors/{name}/health", get(delivery::health))
        .route("/api/v1/dead-letters", get(delivery::dead_letters))
        .route("/api/v1/dead-letters/replay", post(delivery::replay))
        .route("/api/v1/dead-letters/{seq}/replay", post(delivery::replay_one))
        .route("/api/v1/segments/{id}/members", get(flows::members))
        .route("/api/v1/segments/{id}/history", get(flows::history))
        .route("/api/v1/approvals", get(approvals::list))
        .route("/api/v1/approvals/{id}/approve", post(approvals::approve))
        .route("/api/v1/approvals/{id}/reject", post(approvals::reject))
        .route("/api/v1/audit", get(approvals::audit))
        .route("/api/v1/people", get(people::list).post(people::add))
        .route("/api/v1/people/{email}", get(people::get).patch(people::change).delete(people::remove))
        .route("/api/v1/people/{email}/sessions", delete(sessions::sign_out_everywhere))
        .route("/api/v1/sessions", post(sessions::sign_in))
        .route("/api/v1/tokens", get(tokens::list).post(tokens::create))
        .route("/api/v1/tokens/{id}", delete(tokens::revoke))
        .route("/api/v1/session", get(sessions::current).delete(sessions::sign_out))
        .route("/api/v1/flows", get(flows::list))
        .route("/api/v1/segments", get(flows::list))
        .route("/api/v1/policies", get(flows::list))
        .route("/api/v1/flows/{id}", get(flows::get).put(flows::put).delete(flows::delete))
        .route("/api/v1/flows/{id}/stats", get(flows::stats))
        .route("/api/v1/flows/{id}/{verb}", post(flows::pause))
        .route("/api/v1/flows/{id}/preview", post(flows::preview))
        .route("/api/v1/segments/{id}", get(flows::get).put(flows::put).delete(flows::delete))
        .route("/api/v1/policies/{id}", get(flows::get).put(flows::put).delete(flows::delete))
        .route("/api/v1/broadcasts", get(broadcasts::list).post(broadcasts::create))
        .route("/api/v1/broadcasts/review", post(broadcasts::review))
        .route("/api/v1/broadcasts/{id}/cancel", post(broadcasts::cancel))
        .route("/api/v1/questions", post(questions::ask))
        .route("/api/v1/plans", get(plans::list).post(plans::propose))
        .route("/api/v1/plans/{id}", get(plans::show))
        .route("/api/v1/plans/{id}/versions", post(plans::change))
        .route("/api/v1/plans/{id}/{verdict}", post(plans::decide))
        .route("/api/v1/analytics/query", post(questions::query))
        .route("/api/v1/analytics/metrics", get(questions::metrics))
        .route("/api/v1/analytics/status", get(questions::status))
        .route("/api/v1/workers", get(admin::workers))
        .route("/api/v1/analytics/rebuild", post(questions::rebuild))
        .route("/api/v1/flows/{id}/report", get(questions::flow_report))
        .route("/api/v1/flows/{id}/messages", get(questions::messages))
        .route("/api/v1/conversations/import", post(conversations::import))
        .route("/api/v1/conversations/mining", get(conversations::mining))
        .route("/api/v1/conversations/topics", get(conversations::topics))
        .route("/api/v1/conversations/topics/{id}", put(conversations::edit))
        .route("/api/v1/conversations/scripts", get(conversations::scripts))
        .route("/api/v1/conversations/suggest", get(conversations::suggest))
        .route("/api/v1/creatives", get(insights::list))
        .route("/api/v1/creatives/import", post(insights::import))
        .route("/api/v1/creatives/tag", post(insights::tag))
        .route("/api/v1/creatives/{id}", get(insights::get).put(insights::put_creative))
        .route("/api/v1/creatives/{id}/performance", post(insights::post_performance))
        .route("/api/v1/creatives/{id}/tags/{name}", put(insights::set_tag).delete(insights::clear_tag))
        .route("/api/v1/insights/creatives", get(insights::creatives))
        .route("/api/v1/insights/creatives/report.html", get(insights::report_html))
        .route("/api/v1/insights/alerts", get(insights::alerts))
        .route("/api/v1/insights/predict", post(insights::predict))
        .route("/api/v1/insights/budget", post(insights::budget))
        .route("/api/v1/insights/budget/proposals", get(insights::proposals).post(insights::keep_proposal))
        .route("/api/v1/insights/budget/proposals/{id}/{verdict}", post(insights::decide))
        .route("/api/v1/insights/competitors", get(insights::competitors))
        .route("/hooks/{source}", post(delivery::hook).get(delivery::hook))
        .route("/u/{token}", get(delivery::unsubscribe_page).post(delivery::unsubscribe))
        .route("/t/o/{token}", get(delivery::opened))
        .route("/t/c/{token}", get(delivery::clicked))
        .route("/", get(console::overview))
        .route("/sign-in", get(console::sign_in_page).post(console::sign_in))
        .route("/sign-out", post(console::sign_out))
        .route("/profiles", get(console::profiles))
        .route("/profiles/{key}", get(console::profile))
        .route("/profiles/{key}/erase", post(console::erase_profile))
        .route("/flows", get(console::flows))
        .route("/flows/{id}", get(console::flow).post(console::edit_flow))
        .route("/flows/{id}/{verb}", post(console::pause_flow))
        .route("/segments", get(console::segments).post(console::create_segment))
        .route("/segments/{id}", get(console::segment).post(console::edit_segment))
        .route("/deliveries", get(console::deliveries))
        .route("/deliveries/replay", post(console::replay_dead_letters))
        .route("/broadcasts", get(console::broadcasts).post(console::submit_broadcast))
        .route("/broadcasts/{id}/cancel", post(console::cancel_broadcast))
        .route("/creatives", get(console::creatives))
        .route("/conversations", get(console::conversations))
        .route("/creatives/proposals", post(console::propose_budget))
        .route("/creatives/proposals/{id}/{verdict}", post(console::decide_budget))
        .route("/audit", get(console::audit))
        .route("/ask", get(console::ask))
        .route("/copilot", get(console::copilot).post(console::propose_plan))
        .route("/copilot/{id}/change", post(console::change_plan))
        .route("/copilot/{id}/{verdict}", post(console::decide_plan))
        .route("/flows/{id}/report", get(console::flow_report))
        .route("/settings", get(console::settings))
        .route("/workers", get(console::workers))
        .route("/settings/zone", post(console::choose_zone))
        .route("/settings/tokens", post(console::create_token))
        .route("/settings/tokens/{id}/revoke", post(console::revoke_token))
        .route("/settings/connectors/{name}/check", post(console::check_connector))
        .route("/settings/people", post(console::change_person))
        .route("/approvals", get(console::approvals))
        .route("/approvals/{run}/{verdict}", post(console::decide_approval))
        .route("/lang/{code}", get(console::choose_language))
        .route("/assets/console.css", get(console::stylesheet))
        .route("/assets/favicon.svg", get(console::icon))
        .route("/healthz", get(healthz))
        .route("/metrics", get(admin::metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(engine.clone(), cors::cors))
        .layer(axum::middleware::from_fn_with_state(engine.clone(), role_routes))
        .with_state(engine)
}

/// The router, with each request told which address its connection came from (`ConnectInfo`).
#[derive(Clone)]
struct WithPeer {
    router: Router,
    peer: std::net::SocketAddr,
}

impl<B> tower_service::Service<axum::http::Request<B>> for WithPeer
where
    B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = <Router as tower_service::Service<axum::http::Request<B>>>::Future;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: axum::http::Request<B>) -> Self::Future {
        request.extensions_mut().insert(axum::extract::ConnectInfo(self.peer));
        self.router.call(request)
    }
}

/// Serves the app on a bound listener until `shutdown` resolves, then lets in-flight requests finish.
///
/// HTTP/1.1 with keep-alive. A connection that does not deliver a request's headers within the configured
/// header read timeout is closed, so clients that open connections and trickle bytes (slowloris) cannot hold
/// them; bodies have their own timeout in the handlers.
pub async fn serve(
    engine: Arc<Engine>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let header_timeout = engine.config.server.header_read_timeout;
    let router = app(engine);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(connection) => connection,
                Err(e) => {
                    // Out of file descriptors, say: back off a little instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = hyper_util::service::TowerToHyperService::new(WithPeer { router: router.clone(), peer });
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(header_timeout)
            .serve_connection(hyper_util::rt::TokioIo::new(wire::JsonErrors::new(stream)), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_openapi_document_lists_exactly_the_error_codes_of_the_code_table() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).expect("openapi.json is JSON");
        assert_eq!(doc["openapi"], "3.1.0");
        let listed: Vec<&str> = doc["components"]["schemas"]["ErrorCode"]["enum"]
            .as_array()
            .expect("an enum")
            .iter()
            .filter_map(|c| c.as_str())
            .collect();
        let table: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(listed, table);
    }
}
