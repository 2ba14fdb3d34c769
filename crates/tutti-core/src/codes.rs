//! The one table of stable error codes that clients see.
//!
//! A code never changes meaning once released; new situations get new codes. Each line of the table below is
//! one code: its name in Rust, the code in `{"error": {"code": ...}}`, the HTTP status it is answered with
//! (limits answer 400, as Segment's API does) and its line of documentation, which the README's error table
//! and the enum's own documentation both show. Everything else is derived from it.

macro_rules! error_codes {
    ($($variant:ident = $code:literal, $status:literal, $doc:literal;)*) => {
        /// A stable, client-visible error code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $(#[doc = $doc] $variant,)*
        }

        impl ErrorCode {
            /// Every code, in the order of the documentation table.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The code as it appears in `{"error": {"code": ...}}`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)*
                }
            }

            /// The HTTP status the code is answered with.
            pub fn http_status(self) -> u16 {
                match self {
                    $(ErrorCode::$variant => $status,)*
                }
            }

            /// One line of documentation.
            pub fn doc(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $doc,)*
                }
            }
        }
    };
}

#[rustfmt::skip]
error_codes! {
    InvalidJson = "invalid_json", 400, "The body is not valid JSON or not valid UTF-8.";
    InvalidEvent = "invalid_event", 400,
        "An event field is missing, has the wrong type or holds a forbidden value; the message names the field.";
    EventTooLarge = "event_too_large", 400, "One event is larger than 32 KB.";
    RequestTooLarge = "request_too_large", 400,
        "The request body is larger than the route allows after decompression: 500 KB for the tracking API, 64 MiB for a CSV import.";
    UriTooLong = "uri_too_long", 414, "The request's URI is longer than 65,534 bytes (answered by the HTTP layer).";
    HeadersTooLarge = "headers_too_large", 431,
        "The request's headers are too large or more than 100 (answered by the HTTP layer).";
    BatchTooLarge = "batch_too_large", 400, "A batch holds more than 2,500 events.";
    AllEventsRejected = "all_events_rejected", 400, "Every item of the batch was rejected; `rejected` lists why.";
    UnsupportedEncoding = "unsupported_encoding", 415,
        "Content-Encoding is not gzip or identity, or the gzip stream is corrupt.";
    Unauthorized = "unauthorized", 401, "Missing or wrong write key (tracking API) or admin token (admin API).";
    Forbidden = "forbidden", 403,
        "The write key does not reach this: `decide` with the write key answers for `user_id:` and `anonymous_id:` keys only.";
    NotFound = "not_found", 404, "No such route.";
    MethodNotAllowed = "method_not_allowed", 405, "The route does not accept this HTTP method.";
    ProfileNotFound = "profile_not_found", 404, "No profile matches the key.";
    InvalidProfileKey = "invalid_profile_key", 400,
        "A profile key is a profile id or `type:value`, such as `email:a@b.c`.";
    InvalidQuery = "invalid_query", 400, "A query parameter is malformed; the message names it.";
    RequestTimeout = "request_timeout", 408, "The request body did not arrive within the server's body read timeout.";
    InvalidDefinition = "invalid_definition", 400,
        "A flow, segment or policy does not compile or names what does not exist; `problems` lists each with its line and a hint.";
    UnknownFlow = "unknown_flow", 404, "No flow has this id.";
    UnknownSegment = "unknown_segment", 404, "No segment has this id.";
    UnknownPolicy = "unknown_policy", 404, "No policy has this id.";
    UnknownCreative = "unknown_creative", 404, "No creative has this id.";
    UnknownTopic = "unknown_topic", 404, "No topic has this id in the last mining of conversations.";
    InvalidImport = "invalid_import", 400,
        "The CSV is not a Meta Ads Manager, Google Ads or generic export, or cannot be read; the message says why.";
    UnknownConnector = "unknown_connector", 404,
        "No connector by this name is configured; `GET /api/v1/connectors` lists them.";
    UnknownDeadLetter = "unknown_dead_letter", 404,
        "No dead letter has this sequence number (it may have been replayed).";
    UnknownApproval = "unknown_approval", 404, "No run by this id is waiting for approval, nor ever did.";
    ApprovalClosed = "approval_closed", 409,
        "The run no longer waits for approval: already decided, expired or ended; `state` says which.";
    InvalidLink = "invalid_link", 400,
        "A signed link (one-click unsubscribe) does not verify: it was altered or comes from another installation.";
    UnknownHook = "unknown_hook", 404, "No hook file serves this source (`/hooks/{source}`).";
    InvalidSignature = "invalid_signature", 401,
        "An inbound webhook's signature is missing, does not match, or signs a time more than five minutes away.";
    InvalidPayload = "invalid_payload", 400,
        "An inbound webhook's body is not JSON or does not map to events; the message names the item and field.";
    InvalidRequest = "invalid_request", 400,
        "The request is well formed but asks for what cannot be done (no data on the channel, a budget of 0, nothing to tag); the message says why.";
    InvalidPerson = "invalid_person", 400,
        "A person's email, name, role or password does not meet the rules; the message says which.";
    PersonExists = "person_exists", 409, "Someone with this email is a console user already.";
    UnknownPerson = "unknown_person", 404, "No console user has this email.";
    InvalidSignIn = "invalid_sign_in", 401, "The email and password are not those of an account.";
    NotSignedIn = "not_signed_in", 401, "No session: the cookie is missing, or its session ended (idle, too old, or signed out).";
    TooManyAttempts = "too_many_attempts", 429,
        "Too many failed sign-ins for this account or from this address; `Retry-After` says when to try again.";
    UnknownToken = "unknown_token", 404, "You have no personal API token with this id.";
    NeedsPerson = "needs_person", 403,
        "Only a person may do this (decide an approval, manage their tokens): sign in, or use a personal API token, not the admin token.";
    QuestionNotUnderstood = "question_not_understood", 422,
        "The question is not one of the shapes Tutti answers (or names one person); the message, in the question's language, lists what it can answer.";
    QueryTimeout = "query_timeout", 503,
        "The question's query ran longer than `[analytics] query_timeout` and was stopped; ask about a shorter period or a coarser grain.";
    GoalNotUnderstood = "goal_not_understood", 422,
        "The copilot could not plan the goal (or read the change asked); the message, in the goal's language, lists the goals it plans.";
    Unavailable = "unavailable", 503,
        "The engine could not store the request (shutting down or storage failure); retry.";
    Internal = "internal", 500, "Unexpected failure; details are in the server log.";
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "duplicate code {code}");
            assert!(code.as_str().chars().all(|c| c.is_ascii_lowercase() || c == '_'));
            assert!((400..600).contains(&code.http_status()));
            assert!(!code.doc().is_empty());
        }
    }
}
