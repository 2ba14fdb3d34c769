//! `smtp`: email over SMTP.
//!
//! - **Transport**: `security = "starttls"` (the default, RFC 3207, port 587), `"tls"` (implicit TLS, RFC 8314,
//!   port 465) or `"none"` (a relay on one's own network, port 25); credentials from `username_env` and
//!   `password_env`; connections pooled. Built on `lettre`'s SMTP client.
//! - **The message** (`send`): `to` (and `to_name`), `subject`, `text` and/or `html` (both: a
//!   `multipart/alternative`, RFC 2046 §5.1.4), optionally `from` and `reply_to`. Headers with non-ASCII text
//!   are encoded as RFC 2047 words and bodies get a content transfer encoding, so Vietnamese and Chinese arrive
//!   intact.
//! - **One message per action**: the `Message-ID` is derived from the action's idempotency key, so a repeated
//!   attempt (after a crash between the server's acceptance and Tutti's record of it) carries the same id,
//!   which mailbox providers use to drop the copy.
//! - **One-click unsubscribe** for every message that is not `transactional`: `List-Unsubscribe` with a signed
//!   URL that Tutti serves (`{unsubscribe_base_url}/u/{token}`) and `List-Unsubscribe-Post:
//!   List-Unsubscribe=One-Click` (RFC 2369, RFC 8058), as Gmail and Yahoo require of bulk senders. The same URL
//!   replaces `%%unsubscribe_url%%` in the bodies, for the footer link. Tutti answers the POST by setting the
//!   profile's `email_subscribe` to `unsubscribed`, which stops every further non-transactional email.
//!
//! - **Opens and clicks** (`tracking.rs`): in HTML bodies, links go through a signed redirect on Tutti and a
//!   one-pixel image is added, so opens and clicks come back as `Email Opened` and `Email Link Clicked` events
//!   of the profile. Off with `track_opens_and_clicks = false`, or for a flow with `tracking: false`.
//!
//! Failures: SMTP 5xx replies are permanent (a bounce), 4xx and network errors transient.

use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::CheckedConfig;
use crate::{Action, Context, Delivery, Failure, Kind, Operation, Secret, Sender, Settings, optional_text, text};

mod config;
pub mod tracking;
use config::{Config, Security};

/// What an email action's `with` may give.
const EMAIL_FIELDS: [&str; 7] = ["to", "to_name", "subject", "text", "html", "from", "reply_to"];

pub static KIND: Kind = Kind {
    name: "smtp",
    channel: "email",
    operations: &[Operation::taking("send", &EMAIL_FIELDS)],
    default_on: false,
    units: crate::per_action,
    validate: config::validate,
};

/// The placeholder replaced by the recipient's unsubscribe URL in the bodies.
pub const UNSUBSCRIBE_PLACEHOLDER: &str = "%%unsubscribe_url%%";
impl CheckedConfig for config::Checked {
    fn build(self: Box<Self>, settings: &Settings) -> Arc<dyn Sender> {
        Arc::new(Smtp {
            config: self.config,
            credentials: self.credentials,
            from: self.from,
            domain: self.domain,
            unsubscribe: self.unsubscribe,
            link_key: self.link_key,
            timeout: settings.timeout,
            transport: OnceLock::new(),
        })
    }
}

struct Smtp {
    config: Config,
    credentials: Option<(Secret, Secret)>,
    from: Mailbox,
    domain: String,
    unsubscribe: Option<String>,
    link_key: Vec<u8>,
    timeout: std::time::Duration,
    /// Built on first use, inside the runtime that will drive its pooled connections.
    transport: OnceLock<Result<AsyncSmtpTransport<Tokio1Executor>, String>>,
}

/// The token of an unsubscribe link: the address sealed under the installation's link key, so that the link
/// says nothing of whom it unsubscribes. A synthetic IV: the address's HMAC tag (16 bytes) both authenticates it
/// and seeds the keystream (HMAC-SHA256 blocks over the tag and a counter) that the address is XORed with, so one
/// address always gives one token. `base64url(tag || sealed address)`.
pub fn unsubscribe_token(key: &[u8], address: &str) -> String {
    let tag = address_tag(key, address);
    let mut token = tag[..16].to_vec();
    token.extend(keystream_xor(key, UNSUBSCRIBE_STREAM, &tag[..16], address.as_bytes()));
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token)
}

/// The address a token names, if the token is genuine. Tokens of the earlier, readable form
/// (`<address, base64url>.<tag>`) still verify: links in messages already sent keep working.
pub fn verify_unsubscribe(key: &[u8], token: &str) -> Option<String> {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (address, tag) = match token.split_once('.') {
        Some((address, tag)) => (String::from_utf8(b64.decode(address).ok()?).ok()?, b64.decode(tag).ok()?),
        None => {
            let bytes = b64.decode(token).ok()?;
            // An address is at most a few hundred bytes; anything longer is not a token of ours.
            if bytes.len() <= 16 || bytes.len() > 16 + 1024 {
                return None;
            }
            let (tag, sealed) = bytes.split_at(16);
            (String::from_utf8(keystream_xor(key, UNSUBSCRIBE_STREAM, tag, sealed)).ok()?, tag.to_vec())
        }
    };
    if tag.len() != 16 {
        return None;
    }
    address_mac(key, &address).verify_truncated_left(&tag).ok()?;
    Some(address)
}

/// The MAC whose first 16 bytes are an address's tag, in both token forms.
fn address_mac(key: &[u8], address: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(b"tutti-unsubscribe\0");
    mac.update(address.as_bytes());
    mac
}

fn address_tag(key: &[u8], address: &str) -> [u8; 32] {
    address_mac(key, address).finalize().into_bytes().into()
}

/// What the unsubscribe tokens' keystream is made under.
const UNSUBSCRIBE_STREAM: &[u8] = b"tutti-unsubscribe-stream\0";

/// `data` XORed with the keystream that `tag` seeds under `key` and `label` (its own inverse): HMAC-SHA256
/// blocks over the label, the tag and a counter. Unsubscribe and tracking tokens each have their label.
fn keystream_xor(key: &[u8], label: &[u8], tag: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    for (counter, chunk) in data.chunks(32).enumerate() {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
        mac.update(label);
        mac.update(tag);
        mac.update(&(counter as u32).to_be_bytes());
        let block = mac.finalize().into_bytes();
        out.extend(chunk.iter().zip(block.iter()).map(|(d, k)| d ^ k));
    }
    out
}

fn raw_header(name: &'static str, value: String) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), value)
}

impl Smtp {
    fn transport(&self) -> Result<&AsyncSmtpTransport<Tokio1Executor>, Failure> {
        let built = self.transport.get_or_init(|| {
            let host = self.config.host.trim();
            let tls = |host: &str| TlsParameters::new(host.to_owned()).map_err(|e| format!("TLS for {host}: {e}"));
            let (tls, port) = match self.config.security {
                Security::Starttls => (Tls::Required(tls(host)?), 587),
                Security::Tls => (Tls::Wrapper(tls(host)?), 465),
                Security::None => (Tls::None, 25),
            };
            let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
                .port(self.config.port.unwrap_or(port))
                .tls(tls)
                .timeout(Some(self.timeout));
            if let Some(name) = &self.config.helo_name {
                builder = builder.hello_name(lettre::transport::smtp::extension::ClientId::Domain(name.clone()));
            }
            if let Some((user, pass)) = &self.credentials {
                builder = builder.credentials(Credentials::new(user.expose().to_owned(), pass.expose().to_owned()));
            }
            Ok(builder.build())
        });
        built.as_ref().map_err(|e| Failure::permanent(e.clone()))
    }

    /// The message for one action (public for tests of the format).
    fn message(&self, action: &Action<'_>) -> Result<Message, Failure> {
        let p = action.payload;
        KIND.check(action)?;
        let address = text(p, "to", "send")?.trim();
        let email =
            address.parse().map_err(|e| Failure::permanent(format!("`to` `{address}` is not an address: {e}")))?;
        let to = Mailbox::new(optional_text(p, "to_name")?.map(str::to_owned), email);
        let from = match optional_text(p, "from")? {
            Some(from) => {
                from.parse().map_err(|e| Failure::permanent(format!("`from` `{from}` is not an address: {e}")))?
            }
            None => self.from.clone(),
        };
        let subject = text(p, "subject", "send")?;
        let mut builder = Message::builder().from(from).to(to).subject(subject);
        let key_hash = Sha256::digest(action.key.as_bytes());
        let id: String = key_hash[..16].iter().map(|b| format!("{b:02x}")).collect();
        builder = builder.message_id(Some(format!("<{id}@{}>", self.domain)));
        if let Some(reply_to) = optional_text(p, "reply_to")?.or(self.config.reply_to.as_deref()) {
            let reply_to = reply_to
                .parse()
                .map_err(|e| Failure::permanent(format!("`reply_to` `{reply_to}` is not an address: {e}")))?;
            builder = builder.reply_to(reply_to);
        }
        let mut link = None;
        if action.category != "transactional" {
            let Some(base) = &self.unsubscribe else {
                return Err(Failure::permanent(
                    "a non-transactional email needs a one-click unsubscribe link: set `unsubscribe_base_url` in [connectors.smtp]",
                ));
            };
            let url = format!("{base}/u/{}", unsubscribe_token(&self.link_key, address));
            builder = builder
                .raw_header(raw_header("List-Unsubscribe", format!("<{url}>")))
                .raw_header(raw_header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click".into()));
            link = Some(url);
        }
        let fill = |body: &str| match &link {
            Some(url) => body.replace(UNSUBSCRIBE_PLACEHOLDER, url),
            None => body.replace(UNSUBSCRIBE_PLACEHOLDER, ""),
        };
        let text_body = optional_text(p, "text")?.map(fill);
        let mut html_body = optional_text(p, "html")?.map(fill);
        if let (Some(base), true, Some(html)) =
            (&self.unsubscribe, self.config.track_opens_and_clicks && action.tracking, &html_body)
        {
            let message = tracking::Tracked {
                profile: action.profile,
                flow: action.flow.to_owned(),
                step: action.step.to_owned(),
                key: action.key.to_owned(),
                url: None,
            };
            let unsubscribe = format!("{base}/u/");
            html_body = Some(tracking::instrument(html, base, &self.link_key, &message, Some(&unsubscribe)));
        }
        let built = match (text_body, html_body) {
            (Some(text), Some(html)) => builder.multipart(MultiPart::alternative_plain_html(text, html)),
            (Some(text), None) => builder.singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(text)),
            (None, Some(html)) => builder.singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(html)),
            (None, None) => return Err(Failure::permanent("an email needs `text` or `html` (or both)")),
        };
        built.map_err(|e| Failure::permanent(format!("the message cannot be built: {e}")))
    }

    async fn send_one(&self, action: Action<'_>) -> Result<Value, Failure> {
        let message = self.message(&action)?;
        let message_id = message.headers().get_raw("Message-ID").unwrap_or_default().to_owned();
        let transport = self.transport()?;
        match transport.send(message).await {
            Ok(response) => Ok(json!({
                "message_id": message_id,
                "code": response.code().to_string(),
                "reply": response.message().collect::<Vec<_>>().join(" "),
            })),
            Err(e) if e.is_permanent() => Err(Failure::permanent(format!("the SMTP server refused the message: {e}"))),
            Err(e) => Err(Failure::transient(format!("SMTP: {e}"))),
        }
    }
}

impl Sender for Smtp {
    fn send<'a>(&'a self, action: Action<'a>) -> Delivery<'a> {
        Box::pin(async move {
            match action.operation {
                "send" => self.send_one(action).await,
                other => Err(crate::unknown_operation("smtp", other)),
            }
        })
    }

    /// Connects, greets, negotiates TLS and authenticates the way a send would, and sends nothing.
    fn health(&self) -> Delivery<'_> {
        Box::pin(async move {
            match self.transport()?.test_connection().await {
                Ok(true) => Ok(json!({"ok": true, "host": self.config.host})),
                Ok(false) => Err(Failure::transient("the SMTP server did not answer NOOP")),
                Err(e) => Err(Failure::transient(format!("SMTP: {e}"))),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsubscribe_tokens_verify_only_when_untouched() {
        let key = [9u8; 32];
        let token = unsubscribe_token(&key, "lan@example.vn");
        assert_eq!(verify_unsubscribe(&key, &token).as_deref(), Some("lan@example.vn"));
        assert_eq!(unsubscribe_token(&key, "lan@example.vn"), token, "one address, one token");
        assert_eq!(verify_unsubscribe(&[8u8; 32], &token), None, "another installation's key");
        let other = unsubscribe_token(&key, "mai@example.vn");
        let forged = format!("{}{}", &token[..22], &other[22..]);
        assert_eq!(verify_unsubscribe(&key, &forged), None, "a tag moved to another address");
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut bytes = b64.decode(&token).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        assert_eq!(verify_unsubscribe(&key, &b64.encode(bytes)), None, "one bit flipped");
        for junk in ["", ".", "abc", "a.b.c", "bGFu.AAAA", &"A".repeat(3000)] {
            assert_eq!(verify_unsubscribe(&key, junk), None, "{junk}");
        }
    }

    #[test]
    fn an_unsubscribe_token_does_not_show_the_address() {
        let key = [9u8; 32];
        let address = "nguyen.thi.lan@example.vn";
        let token = unsubscribe_token(&key, address);
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        for shown in
            [address.to_owned(), b64.encode(address), base64::engine::general_purpose::STANDARD.encode(address)]
        {
            assert!(!token.contains(&shown[..12]), "{token} shows {shown}");
        }
        assert!(!String::from_utf8_lossy(&b64.decode(&token).unwrap()).contains("example"), "{token}");
    }

    #[test]
    fn links_already_sent_in_the_readable_form_still_unsubscribe() {
        let key = [9u8; 32];
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let tag = address_tag(&key, "lan@example.vn");
        let legacy = format!("{}.{}", b64.encode("lan@example.vn"), b64.encode(&tag[..16]));
        assert_eq!(verify_unsubscribe(&key, &legacy).as_deref(), Some("lan@example.vn"));
        let moved = format!("{}.{}", b64.encode("mai@example.vn"), b64.encode(&tag[..16]));
        assert_eq!(verify_unsubscribe(&key, &moved), None);
    }
}
