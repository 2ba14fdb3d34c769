//! The one table of stable error codes that clients see.
//!
//! A code never changes meaning once released; new situations get new codes. Each code carries the HTTP status
//! it is answered with and a line of documentation, rendered into the README's error table.

/// A stable, client-visible error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The body is not valid JSON (or not valid UTF-8).
    InvalidJson,
    /// The JSON is well formed but an event field is missing, of the wrong type or not allowed.
    InvalidEvent,
    /// One event is larger than the per-event limit (32 KB).
    EventTooLarge,
    /// The request body, after decompression, is larger than the route's limit (500 KB for tracking).
    RequestTooLarge,
    /// The request's URI is past what the HTTP layer reads (64 KiB).
    UriTooLong,
    /// The request's headers are past what the HTTP layer reads, or more than 100.
    HeadersTooLarge,
    /// A batch holds more events than the per-batch limit (2,500).
    BatchTooLarge,
    /// The batch had items, and every one of them was rejected.
    AllEventsRejected,
    /// A `Content-Encoding` other than `gzip` or `identity`, or a gzip stream that cannot be decoded.
    UnsupportedEncoding,
    /// No credentials, or credentials that do not match.
    Unauthorized,
    /// Valid credentials that do not reach this: the write key asking what only the admin token may.
    Forbidden,
    /// The route does not exist.
    NotFound,
    /// The route exists but not for this HTTP method.
    MethodNotAllowed,
    /// The profile key names no known profile.
    ProfileNotFound,
    /// The profile key is not a profile id nor `type:value`.
    InvalidProfileKey,
    /// A query parameter is malformed.
    InvalidQuery,
    /// The client did not send the request body in time.
    RequestTimeout,
    /// A flow, segment or policy does not compile or names what does not exist.
    InvalidDefinition,
    /// No flow has this id.
    UnknownFlow,
    /// No segment has this id.
    UnknownSegment,
    /// No policy has this id.
    UnknownPolicy,
    /// No creative has this id.
    UnknownCreative,
    /// A CSV import is not a known export layout or cannot be read.
    InvalidImport,
    /// No connector by this name is configured.
    UnknownConnector,
    /// No dead letter has this sequence number.
    UnknownDeadLetter,
    /// No run by this id is waiting for approval, nor ever did.
    UnknownApproval,
    /// The run no longer waits for approval: already decided, expired or ended.
    ApprovalClosed,
    /// A signed link (one-click unsubscribe) does not verify.
    InvalidLink,
    /// No hook file serves this source.
    UnknownHook,
    /// An inbound webhook's signature is missing, wrong or too old.
    InvalidSignature,
    /// An inbound webhook's payload is not JSON or does not map to events.
    InvalidPayload,
    /// The request is well formed but asks for what cannot be done.
    InvalidRequest,
    /// The engine is shutting down or its storage failed; the request was not stored and may be retried.
    Unavailable,
    /// An unexpected failure; details are in the server log, never in the response.
    Internal,
}

impl ErrorCode {
    /// Every code, in the order of the documentation table.
    pub const ALL: [ErrorCode; 34] = [
        ErrorCode::InvalidJson,
        ErrorCode::InvalidEvent,
        ErrorCode::EventTooLarge,
        ErrorCode::RequestTooLarge,
        ErrorCode::UriTooLong,
        ErrorCode::HeadersTooLarge,
        ErrorCode::BatchTooLarge,
        ErrorCode::AllEventsRejected,
        ErrorCode::UnsupportedEncoding,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::ProfileNotFound,
        ErrorCode::InvalidProfileKey,
        ErrorCode::InvalidQuery,
        ErrorCode::RequestTimeout,
        ErrorCode::InvalidDefinition,
        ErrorCode::UnknownFlow,
        ErrorCode::UnknownSegment,
        ErrorCode::UnknownPolicy,
        ErrorCode::UnknownCreative,
        ErrorCode::InvalidImport,
        ErrorCode::UnknownConnector,
        ErrorCode::UnknownDeadLetter,
        ErrorCode::UnknownApproval,
        ErrorCode::ApprovalClosed,
        ErrorCode::InvalidLink,
        ErrorCode::UnknownHook,
        ErrorCode::InvalidSignature,
        ErrorCode::InvalidPayload,
        ErrorCode::InvalidRequest,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
    ];

    /// The code as it appears in `{"error": {"code": ...}}`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::InvalidEvent => "invalid_event",
            ErrorCode::EventTooLarge => "event_too_large",
            ErrorCode::RequestTooLarge => "request_too_large",
            ErrorCode::UriTooLong => "uri_too_long",
            ErrorCode::HeadersTooLarge => "headers_too_large",
            ErrorCode::BatchTooLarge => "batch_too_large",
            ErrorCode::AllEventsRejected => "all_events_rejected",
            ErrorCode::UnsupportedEncoding => "unsupported_encoding",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::ProfileNotFound => "profile_not_found",
            ErrorCode::InvalidProfileKey => "invalid_profile_key",
            ErrorCode::InvalidQuery => "invalid_query",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::InvalidDefinition => "invalid_definition",
            ErrorCode::UnknownFlow => "unknown_flow",
            ErrorCode::UnknownSegment => "unknown_segment",
            ErrorCode::UnknownPolicy => "unknown_policy",
            ErrorCode::UnknownCreative => "unknown_creative",
            ErrorCode::InvalidImport => "invalid_import",
            ErrorCode::UnknownConnector => "unknown_connector",
            ErrorCode::UnknownDeadLetter => "unknown_dead_letter",
            ErrorCode::UnknownApproval => "unknown_approval",
            ErrorCode::ApprovalClosed => "approval_closed",
            ErrorCode::InvalidLink => "invalid_link",
            ErrorCode::UnknownHook => "unknown_hook",
            ErrorCode::InvalidSignature => "invalid_signature",
            ErrorCode::InvalidPayload => "invalid_payload",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }

    /// The HTTP status the code is answered with. Limits answer 400, as Segment's API does.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::InvalidJson
            | ErrorCode::InvalidEvent
            | ErrorCode::EventTooLarge
            | ErrorCode::RequestTooLarge
            | ErrorCode::BatchTooLarge
            | ErrorCode::AllEventsRejected
            | ErrorCode::InvalidProfileKey
            | ErrorCode::InvalidQuery
            | ErrorCode::InvalidDefinition
            | ErrorCode::InvalidImport
            | ErrorCode::InvalidLink
            | ErrorCode::InvalidPayload
            | ErrorCode::InvalidRequest => 400,
            ErrorCode::Unauthorized | ErrorCode::InvalidSignature => 401,
            ErrorCode::UriTooLong => 414,
            ErrorCode::HeadersTooLarge => 431,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound
            | ErrorCode::ProfileNotFound
            | ErrorCode::UnknownFlow
            | ErrorCode::UnknownSegment
            | ErrorCode::UnknownPolicy
            | ErrorCode::UnknownCreative
            | ErrorCode::UnknownConnector
            | ErrorCode::UnknownDeadLetter
            | ErrorCode::UnknownApproval
            | ErrorCode::UnknownHook => 404,
            ErrorCode::ApprovalClosed => 409,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::RequestTimeout => 408,
            ErrorCode::UnsupportedEncoding => 415,
            ErrorCode::Unavailable => 503,
            ErrorCode::Internal => 500,
        }
    }

    /// One line of documentation.
    pub fn doc(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "The body is not valid JSON or not valid UTF-8.",
            ErrorCode::InvalidEvent => {
                "An event field is missing, has the wrong type or holds a forbidden value; the message names the field."
            }
            ErrorCode::EventTooLarge => "One event is larger than 32 KB.",
            ErrorCode::UriTooLong => "The request's URI is longer than 65,534 bytes (answered by the HTTP layer).",
            ErrorCode::HeadersTooLarge => {
                "The request's headers are too large or more than 100 (answered by the HTTP layer)."
            }
            ErrorCode::RequestTooLarge => {
                "The request body is larger than the route allows after decompression: 500 KB for the tracking API, 64 MiB for a CSV import."
            }
            ErrorCode::BatchTooLarge => "A batch holds more than 2,500 events.",
            ErrorCode::AllEventsRejected => "Every item of the batch was rejected; `rejected` lists why.",
            ErrorCode::UnsupportedEncoding => {
                "Content-Encoding is not gzip or identity, or the gzip stream is corrupt."
            }
            ErrorCode::Unauthorized => "Missing or wrong write key (tracking API) or admin token (admin API).",
            ErrorCode::Forbidden => {
                "The write key does not reach this: `decide` with the write key answers for `user_id:` and `anonymous_id:` keys only."
            }
            ErrorCode::NotFound => "No such route.",
            ErrorCode::MethodNotAllowed => "The route does not accept this HTTP method.",
            ErrorCode::ProfileNotFound => "No profile matches the key.",
            ErrorCode::InvalidProfileKey => "A profile key is a profile id or `type:value`, such as `email:a@b.c`.",
            ErrorCode::InvalidQuery => "A query parameter is malformed; the message names it.",
            ErrorCode::RequestTimeout => "The request body did not arrive within the server's body read timeout.",
            ErrorCode::InvalidDefinition => {
                "A flow, segment or policy does not compile or names what does not exist; `problems` lists each with its line and a hint."
            }
            ErrorCode::UnknownFlow => "No flow has this id.",
            ErrorCode::UnknownSegment => "No segment has this id.",
            ErrorCode::UnknownPolicy => "No policy has this id.",
            ErrorCode::UnknownCreative => "No creative has this id.",
            ErrorCode::InvalidImport => {
                "The CSV is not a Meta Ads Manager, Google Ads or generic export, or cannot be read; the message says why."
            }
            ErrorCode::UnknownConnector => {
                "No connector by this name is configured; `GET /api/v1/connectors` lists them."
            }
            ErrorCode::UnknownDeadLetter => "No dead letter has this sequence number (it may have been replayed).",
            ErrorCode::UnknownApproval => "No run by this id is waiting for approval, nor ever did.",
            ErrorCode::ApprovalClosed => {
                "The run no longer waits for approval: already decided, expired or ended; `state` says which."
            }
            ErrorCode::UnknownHook => "No hook file serves this source (`/hooks/{source}`).",
            ErrorCode::InvalidSignature => {
                "An inbound webhook's signature is missing, does not match, or signs a time more than five minutes away."
            }
            ErrorCode::InvalidPayload => {
                "An inbound webhook's body is not JSON or does not map to events; the message names the item and field."
            }
            ErrorCode::InvalidLink => {
                "A signed link (one-click unsubscribe) does not verify: it was altered or comes from another installation."
            }
            ErrorCode::InvalidRequest => {
                "The request is well formed but asks for what cannot be done (no data on the channel, a budget of 0, nothing to tag); the message says why."
            }
            ErrorCode::Unavailable => {
                "The engine could not store the request (shutting down or storage failure); retry."
            }
            ErrorCode::Internal => "Unexpected failure; details are in the server log.",
        }
    }
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
