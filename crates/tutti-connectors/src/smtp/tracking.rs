//! Open and click tracking for email: an HTML body's links rewritten to `{base}/t/c/{token}`, which Tutti
//! answers with a redirect to the link, and a one-pixel image `{base}/t/o/{token}` added before `</body>`. The
//! token seals what the open or click is of (the profile, flow, step, action and, for a click, the link) under
//! the installation's link key, as unsubscribe tokens do: it says nothing readable, cannot be altered, and a click
//! can only ever redirect to the link that was in the message, so the redirect is never an open one.
//!
//! Plain-text bodies are left as they are, and so are links that are not `http(s)` (`mailto:`, `tel:`, anchors)
//! and the unsubscribe link. Tracking is off for a connector with `track_opens_and_clicks = false` and for a
//! flow with `tracking: false`.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The most links of one message rewritten; the rest stay as written.
pub const MAX_LINKS: usize = 200;
/// The longest link rewritten.
pub const MAX_URL: usize = 2048;

/// What an open or a click is of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tracked {
    #[serde(rename = "p")]
    pub profile: u64,
    #[serde(rename = "f")]
    pub flow: String,
    #[serde(rename = "s")]
    pub step: String,
    /// The action's idempotency key: which message.
    #[serde(rename = "k")]
    pub key: String,
    /// The link, for a click.
    #[serde(rename = "u", default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

fn mac(key: &[u8], label: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(label);
    mac
}

/// What tracking tokens' keystream is made under.
const TRACK_STREAM: &[u8] = b"tutti-track-stream\0";

/// The token of an open (no `url`) or a click: `base64url(tag || sealed JSON)`.
pub fn token(key: &[u8], tracked: &Tracked) -> String {
    let json = serde_json::to_vec(tracked).expect("a tracked message serialises");
    let mut m = mac(key, b"tutti-track\0");
    m.update(&json);
    let tag = m.finalize().into_bytes();
    let mut out = tag[..16].to_vec();
    out.extend(super::keystream_xor(key, TRACK_STREAM, &tag[..16], &json));
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(out)
}

/// What a token is of, if it is genuine.
pub fn verify(key: &[u8], token: &str) -> Option<Tracked> {
    if token.len() > 4 * (16 + MAX_URL + 1024) / 3 + 4 {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).ok()?;
    if bytes.len() <= 16 {
        return None;
    }
    let (tag, sealed) = bytes.split_at(16);
    let json = super::keystream_xor(key, TRACK_STREAM, tag, sealed);
    let mut m = mac(key, b"tutti-track\0");
    m.update(&json);
    m.verify_truncated_left(tag).ok()?;
    serde_json::from_slice(&json).ok()
}

/// An `href` value as the browser reads it: the few entities a link carries decoded.
fn unescape(value: &str) -> String {
    value.replace("&amp;", "&").replace("&#38;", "&").replace("&quot;", "\"").replace("&#39;", "'")
}

fn trackable(url: &str, unsubscribe: Option<&str>) -> bool {
    let lower = url.trim_start().to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://"))
        && url.len() <= MAX_URL
        && !url.chars().any(char::is_control)
        && unsubscribe.is_none_or(|u| !url.starts_with(u))
}

/// The HTML body with its links going through `{base}/t/c/...` and the open pixel added.
pub fn instrument(html: &str, base: &str, key: &[u8], message: &Tracked, unsubscribe: Option<&str>) -> String {
    let mut out = String::with_capacity(html.len() + 256);
    let lower = html.to_ascii_lowercase();
    let mut at = 0;
    let mut rewritten = 0;
    while let Some(found) = lower[at..].find("href=") {
        let start = at + found + "href=".len();
        let quote = html[start..].chars().next();
        let Some(q @ ('"' | '\'')) = quote else {
            out.push_str(&html[at..start]);
            at = start;
            continue;
        };
        let value_start = start + 1;
        let Some(len) = html[value_start..].find(q) else { break };
        let value = &html[value_start..value_start + len];
        out.push_str(&html[at..value_start]);
        let url = unescape(value);
        if rewritten < MAX_LINKS && trackable(&url, unsubscribe) {
            let click = Tracked { url: Some(url.trim().to_owned()), ..message.clone() };
            out.push_str(&format!("{base}/t/c/{}", token(key, &click)));
            rewritten += 1;
        } else {
            out.push_str(value);
        }
        at = value_start + len;
    }
    out.push_str(&html[at..]);
    let pixel = format!(
        "<img src=\"{base}/t/o/{}\" width=\"1\" height=\"1\" alt=\"\" style=\"display:none\">",
        token(key, message)
    );
    match out.to_ascii_lowercase().rfind("</body>") {
        Some(i) => out.insert_str(i, &pixel),
        None => out.push_str(&pixel),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> Tracked {
        Tracked { profile: 42, flow: "newsletter".into(), step: "mail".into(), key: "p42-1:mail:1".into(), url: None }
    }

    #[test]
    fn tokens_verify_only_when_untouched_and_say_nothing_readable() {
        let key = [7u8; 32];
        let t = token(&key, &message());
        assert_eq!(verify(&key, &t), Some(message()));
        assert!(
            !t.contains("newsletter")
                && !String::from_utf8_lossy(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&t).unwrap())
                    .contains("newsletter")
        );
        assert_eq!(verify(&[8u8; 32], &t), None, "another installation's key");
        let mut bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&t).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert_eq!(verify(&key, &base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)), None);
        assert_eq!(verify(&key, "not a token"), None);
    }

    #[test]
    fn links_go_through_tutti_and_a_pixel_is_added() {
        let key = [7u8; 32];
        let html = "<html><body><p>Xem <a href=\"https://shop.vn/sale?a=1&amp;b=2\">ưu đãi</a>, <a href='mailto:x@y.vn'>thư</a>, <a HREF=\"https://mkt.vn/u/abc\">hủy</a>, <a href=\"#top\">đầu</a></p></BODY></html>";
        let out = instrument(html, "https://mkt.vn", &key, &message(), Some("https://mkt.vn/u/"));
        assert_eq!(out.matches("https://mkt.vn/t/c/").count(), 1, "{out}");
        assert!(
            out.contains("href='mailto:x@y.vn'")
                && out.contains("https://mkt.vn/u/abc")
                && out.contains("href=\"#top\"")
        );
        let click = out.split("https://mkt.vn/t/c/").nth(1).unwrap().split('"').next().unwrap();
        assert_eq!(
            verify(&key, click).unwrap().url.as_deref(),
            Some("https://shop.vn/sale?a=1&b=2"),
            "the link as the browser reads it"
        );
        let pixel_at = out.find("https://mkt.vn/t/o/").unwrap();
        assert!(pixel_at < out.find("</BODY>").unwrap(), "{out}");
        assert!(out.contains("ưu đãi"));
        // Unterminated or odd markup is kept as it is.
        for odd in ["<a href=\"https://x.vn", "href=", "<a href=https://x.vn>x</a>"] {
            let out = instrument(odd, "https://mkt.vn", &key, &message(), None);
            assert!(out.starts_with(odd), "{out}");
        }
    }
}
