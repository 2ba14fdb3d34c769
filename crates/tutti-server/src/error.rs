//! API errors: a stable code from the one table in `tutti_core::codes`, a message, and nothing internal.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tutti_core::ErrorCode;

/// An error answered as `{"error": {"code", "message"}}`, with optional extra top-level fields.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub extra: Map<String, Value>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError { code, message: message.into(), extra: Map::new() }
    }

    pub fn with(mut self, key: &str, value: Value) -> ApiError {
        self.extra.insert(key.into(), value);
        self
    }

    /// An internal failure: logged in full here, answered without details.
    pub fn internal(context: &str, error: impl std::fmt::Display) -> ApiError {
        tracing::error!(%error, "{context}");
        ApiError::new(ErrorCode::Internal, "internal error; see the server log")
    }
}

impl From<tutti_engine::EngineError> for ApiError {
    fn from(e: tutti_engine::EngineError) -> ApiError {
        match e {
            tutti_engine::EngineError::Intake(_) | tutti_engine::EngineError::ProcessorGone => {
                tracing::warn!(error = %e, "request not stored");
                ApiError::new(ErrorCode::Unavailable, "the engine could not store the request; retry later")
            }
            other => ApiError::internal("engine failure", other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let retry_after = self.extra.get("retry_after_s").and_then(Value::as_u64);
        let mut body = self.extra;
        body.insert("error".into(), json!({"code": self.code.as_str(), "message": self.message}));
        let mut response = (status, Json(Value::Object(body))).into_response();
        if self.code == ErrorCode::Unauthorized {
            response
                .headers_mut()
                .insert("www-authenticate", axum::http::HeaderValue::from_static("Basic realm=\"tutti\""));
        }
        if let Some(seconds) = retry_after {
            response.headers_mut().insert("retry-after", axum::http::HeaderValue::from(seconds));
        }
        response
    }
}

/// Constant-time comparison, so that response timing does not reveal how much of a secret was right.
pub fn secret_eq(given: &[u8], expected: &[u8]) -> bool {
    if given.len() != expected.len() {
        return false;
    }
    given.iter().zip(expected).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// A value answered as JSON; one that cannot be made JSON is an internal error naming `what`.
pub(crate) fn to_json(what: &str, value: &impl serde::Serialize) -> Result<axum::Json<serde_json::Value>, ApiError> {
    Ok(axum::Json(serde_json::to_value(value).map_err(|e| ApiError::internal(what, e))?))
}

/// A JSON request body as `T`; what does not parse is `invalid_json` with serde's message.
pub(crate) fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::new(ErrorCode::InvalidJson, e.to_string()))
}
