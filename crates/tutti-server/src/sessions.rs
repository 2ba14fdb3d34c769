//! Signing in and out: `POST /api/v1/sessions` (email and password) starts a session held in an HttpOnly,
//! SameSite=Strict cookie; `GET /api/v1/session` says who it is; `DELETE /api/v1/session` ends it (with its
//! CSRF token); `DELETE /api/v1/people/{email}/sessions` ends all of someone's (admin token).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tutti_core::ErrorCode;
use tutti_engine::{Engine, Session};

use crate::admin::{Admin, blocking};
use crate::error::{ApiError, json_body, secret_eq};

/// The cookie's name.
pub const COOKIE: &str = "tutti_session";

/// The value of the cookie `name` a request carries, if any.
pub(crate) fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value.trim())
}

/// The address the connection came from (what failed sign-ins are counted against), as `serve` records it;
/// `unknown` for a request that did not come through it (tests calling the router directly).
pub struct ClientAddress(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<ClientAddress, Self::Rejection> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(peer)| peer.ip().to_string());
        Ok(ClientAddress(peer.unwrap_or_else(|| "unknown".into())))
    }
}

/// A request from someone signed in: the session its cookie names, while it lasts.
pub struct SignedIn {
    pub session: Session,
    token: String,
}

impl FromRequestParts<Arc<Engine>> for SignedIn {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, engine: &Arc<Engine>) -> Result<SignedIn, ApiError> {
        let not_signed_in = || ApiError::new(ErrorCode::NotSignedIn, "sign in first: POST /api/v1/sessions");
        let token = cookie(&parts.headers, COOKIE).ok_or_else(not_signed_in)?.to_owned();
        let engine = engine.clone();
        let looked_up = token.clone();
        let session = blocking(move || Ok(engine.people().session(&looked_up)?)).await?;
        Ok(SignedIn { session: session.ok_or_else(not_signed_in)?, token })
    }
}

/// For the console's pages, where no session means "sign in first" rather than an error.
impl axum::extract::OptionalFromRequestParts<Arc<Engine>> for SignedIn {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, engine: &Arc<Engine>) -> Result<Option<SignedIn>, ApiError> {
        match <SignedIn as FromRequestParts<Arc<Engine>>>::from_request_parts(parts, engine).await {
            Ok(signed_in) => Ok(Some(signed_in)),
            Err(e) if e.code == ErrorCode::NotSignedIn => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl SignedIn {
    /// The session's token, from the cookie.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Refuses an unsafe request whose `X-CSRF-Token` is not the session's: a page of another site can make
    /// the browser send the cookie, never this header.
    pub(crate) fn check_csrf(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let given = headers.get("x-csrf-token").map(HeaderValue::as_bytes).unwrap_or_default();
        if secret_eq(given, self.session.csrf.as_bytes()) {
            return Ok(());
        }
        Err(ApiError::new(ErrorCode::Forbidden, "send the session's CSRF token in X-CSRF-Token"))
    }
}

fn shown(session: &Session) -> Value {
    let p = &session.person;
    json!({"email": p.email, "name": p.name, "role": p.role.as_str(), "csrf": session.csrf,
           "expires_at": session.expires_at})
}

/// The cookie that holds a session's `token`, or that clears it (`None`): only the server reads it (HttpOnly),
/// only this site sends it (SameSite=Strict), over TLS only when the request came over TLS (directly or through
/// a proxy that says so). The browser may keep it as long as a session can last; the server ends it sooner when
/// unused.
pub(crate) fn session_cookie(token: Option<&str>, headers: &HeaderMap) -> HeaderValue {
    let tls = headers.get("x-forwarded-proto").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
    let secure = if tls { "; Secure" } else { "" };
    let (value, max_age_s) = token.map_or(("", 0), |t| (t, tutti_engine::people::SESSION_MAX_MS / 1000));
    let cookie = format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{secure}");
    HeaderValue::from_str(&cookie).expect("a token is hex")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignInBody {
    email: String,
    password: String,
}

/// `POST /api/v1/sessions`: signs in. 201 with who, the CSRF token and when the session ends, and the cookie;
/// 401 `invalid_sign_in` for a wrong email or password (the same answer for both); 429 after too many.
pub async fn sign_in(
    State(engine): State<Arc<Engine>>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let b: SignInBody = json_body(&body)?;
    let signed_in = blocking(move || Ok(engine.people().sign_in(&b.email, &b.password, &address)?)).await?;
    let Some(signed_in) = signed_in else {
        return Err(ApiError::new(ErrorCode::InvalidSignIn, "the email and password are not those of an account"));
    };
    let mut response = (StatusCode::CREATED, Json(shown(&signed_in.session))).into_response();
    response.headers_mut().insert(header::SET_COOKIE, session_cookie(Some(&signed_in.token), &headers));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `GET /api/v1/session`: who is signed in, with the CSRF token their unsafe requests carry.
pub async fn current(signed_in: SignedIn) -> Json<Value> {
    Json(shown(&signed_in.session))
}

/// `DELETE /api/v1/session`: signs out here. Needs the session's CSRF token.
pub async fn sign_out(
    signed_in: SignedIn,
    State(engine): State<Arc<Engine>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    signed_in.check_csrf(&headers)?;
    let token = signed_in.token.clone();
    blocking(move || Ok(engine.people().sign_out(&token)?)).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(header::SET_COOKIE, session_cookie(None, &headers));
    Ok(response)
}

/// `DELETE /api/v1/people/{email}/sessions`: signs someone out everywhere. 200 with how many sessions ended.
pub async fn sign_out_everywhere(
    admin: Admin,
    State(engine): State<Arc<Engine>>,
    Path(email): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let ended = blocking(move || {
        let ended = engine.people().sign_out_everywhere(&email)?;
        let detail =
            json!({"person": email.trim().to_lowercase(), "change": "signed out everywhere", "sessions": ended});
        engine.record(tutti_core::audit::AuditKind::People, &admin.by(), None, None, detail)?;
        Ok(ended)
    })
    .await?;
    Ok(Json(json!({"ended": ended})))
}
