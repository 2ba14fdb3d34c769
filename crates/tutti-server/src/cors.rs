//! CORS for the routes a web page calls with the write key: the tracking API (`/v1/*`) and `GET
//! /api/v1/decide`. Browsers ask first (a preflight `OPTIONS` naming the method and headers), then send the
//! request; both answers name the allowed origin. Origins are configured per surface (`[server]
//! tracking_origins`, `decide_origins`); the tracking API allows any by default, as Segment does. The admin
//! API sends no CORS headers, so no page can call it from a browser.
//!
//! The requested origin is echoed (with `Vary: Origin`) rather than `*`, so that pages sending credentials
//! work too.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tutti_core::ErrorCode;
use tutti_engine::Engine;

use crate::error::ApiError;

/// How long a browser may keep a preflight's answer.
const MAX_AGE_SECONDS: &str = "86400";

/// The origins allowed on this path, if it is a browser-facing one.
fn origins<'e>(engine: &'e Engine, path: &str) -> Option<(&'e [String], &'static str)> {
    let server = &engine.config.server;
    if path.starts_with("/v1/") {
        Some((&server.tracking_origins, "POST, OPTIONS"))
    } else if path == "/api/v1/decide" {
        Some((&server.decide_origins, "GET, OPTIONS"))
    } else {
        None
    }
}

pub async fn cors(State(engine): State<Arc<Engine>>, request: Request<Body>, next: Next) -> Response {
    let Some((allowed, methods)) = origins(&engine, request.uri().path()) else {
        return next.run(request).await;
    };
    let origin = request.headers().get(header::ORIGIN).cloned();
    let permitted = origin.as_ref().filter(|o| {
        let o = o.to_str().unwrap_or("");
        allowed.iter().any(|a| a == "*" || a == o)
    });
    let preflight = request.method() == Method::OPTIONS;
    if preflight {
        let Some(origin) = permitted else {
            return ApiError::new(ErrorCode::Forbidden, "this origin may not call this route from a browser")
                .into_response();
        };
        let requested = request.headers().get(header::ACCESS_CONTROL_REQUEST_HEADERS).cloned();
        let mut response = StatusCode::NO_CONTENT.into_response();
        let h = response.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(methods));
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            requested.unwrap_or(HeaderValue::from_static("Authorization, Content-Type, Content-Encoding")),
        );
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(MAX_AGE_SECONDS));
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
        return response;
    }
    let permitted = permitted.cloned();
    let mut response = next.run(request).await;
    if let Some(origin) = permitted {
        let h = response.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    response
}
