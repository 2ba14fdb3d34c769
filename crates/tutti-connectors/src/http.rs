//! The HTTP client of every HTTP connector.
//!
//! - **TLS** with rustls and Mozilla's root certificates (bundled, so it works in a scratch container); plain
//!   HTTP as well, for endpoints inside one's own network.
//! - **The private-address guard.** Private, loopback and link-local destinations are refused unless
//!   allow-listed, so flows cannot be turned against the network Tutti runs in. The check sits in the client's
//!   connector ([`GuardedConnector`]): the addresses checked are the addresses connected to, so a name that
//!   resolves to a public address for a check and to a private one a moment later (DNS rebinding) gains
//!   nothing. IP literals are checked without a lookup; names are looked up on Tokio's blocking pool.
//! - **Answers** are read up to 64 KB, and [`classify`] turns a status into delivered, worth retrying (with the
//!   vendor's `Retry-After`, in seconds or as an HTTP date) or permanent.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderMap, HeaderValue};
use serde_json::{Value, json};

use crate::Failure;

/// The most of an answer's body kept.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

type Client = hyper_util::client::legacy::Client<hyper_rustls::HttpsConnector<GuardedConnector>, Full<Bytes>>;

/// A pooled HTTP/1.1 client with TLS and the private-address guard.
///
/// Built anywhere; used on one Tokio runtime (its pooled connections belong to the runtime that opened them).
#[derive(Clone)]
pub struct Http {
    client: Client,
}

/// What a vendor answered.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    /// The body, up to 64 KB (a longer or broken body is kept empty: the status decides).
    pub body: Bytes,
}

impl Answer {
    /// The body as JSON, or as a JSON string when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&self.body).into_owned()))
    }
}

impl Http {
    /// `allow_private`: hosts or addresses that may be reached although private. `pool`: idle connections kept
    /// per host.
    pub fn new(allow_private: &[String], pool: usize) -> Http {
        let guarded =
            GuardedConnector { resolver: Arc::new(GuardedResolver { allow_private: allow_private.to_vec() }) };
        let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(guarded);
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(pool.max(1))
            .build(connector);
        Http { client }
    }

    /// Sends a request and hands back the answer with its body unread, for answers read as they arrive
    /// (server-sent events). A refused destination is a permanent failure; other network errors are transient.
    pub async fn open(
        &self,
        request: hyper::Request<Full<Bytes>>,
    ) -> Result<hyper::Response<hyper::body::Incoming>, Failure> {
        self.client
            .request(request)
            .await
            .map_err(|e| if refused(&e) { Failure::Permanent(chain(&e)) } else { Failure::transient(chain(&e)) })
    }

    /// Sends a request. A refused destination is a permanent failure; other network errors are transient.
    pub async fn send(&self, request: hyper::Request<Full<Bytes>>) -> Result<Answer, Failure> {
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| if refused(&e) { Failure::Permanent(chain(&e)) } else { Failure::transient(chain(&e)) })?;
        let status = response.status().as_u16();
        let (parts, body) = response.into_parts();
        let limited = http_body_util::Limited::new(body, MAX_ANSWER_BYTES);
        let body = match http_body_util::BodyExt::collect(limited).await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => Bytes::new(),
        };
        Ok(Answer { status, headers: parts.headers, body })
    }

    /// Sends JSON with the given method, URL and headers.
    pub async fn json(
        &self,
        method: hyper::Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Answer, Failure> {
        let uri = parse_url(url)?;
        let mut request = hyper::Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let bytes = match body {
            Some(body) => {
                request = request.header(hyper::header::CONTENT_TYPE, "application/json; charset=utf-8");
                Bytes::from(serde_json::to_vec(body).expect("JSON serialises"))
            }
            None => Bytes::new(),
        };
        let request = request
            .body(Full::new(bytes))
            .map_err(|e| Failure::permanent(format!("the request cannot be built: {e}")))?;
        self.send(request).await
    }
}

impl Http {
    /// Sends `fields` as an `application/x-www-form-urlencoded` body with the given method, URL and headers (the
    /// format of Twilio's API, Zalo's OAuth and Alibaba Cloud's RPC calls).
    pub async fn form(
        &self,
        method: hyper::Method,
        url: &str,
        headers: &[(&str, &str)],
        fields: &[(&str, &str)],
    ) -> Result<Answer, Failure> {
        let uri = parse_url(url)?;
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(uri)
            .header(hyper::header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(Bytes::from(form_encode(fields))))
            .map_err(|e| Failure::permanent(format!("the request cannot be built: {e}")))?;
        self.send(request).await
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters (letters, digits, `-._~`), with upper-case
/// hex: a value inside a path, and the encoding Alibaba Cloud's signature is computed over.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Fields as a form body (`a=1&b=x+y`), in the order given.
pub fn form_encode(fields: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish()
}

/// Checks a URL's shape: http or https, with a host.
pub fn parse_url(url: &str) -> Result<hyper::Uri, Failure> {
    let uri: hyper::Uri = url.parse().map_err(|e| Failure::permanent(format!("`{url}` is not a URL: {e}")))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(Failure::permanent(format!("`{url}`: only http and https are allowed"))),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(Failure::permanent(format!("`{url}` has no host")));
    }
    Ok(uri)
}

/// The common reading of an answer: 2xx delivered (the result is the status and the body); 408, 425, 429 and
/// 5xx worth retrying, after the vendor's `Retry-After` when it gave one; anything else permanent, with the
/// start of the body, which usually says what was wrong.
pub fn classify(answer: &Answer, now_ms: i64) -> Result<Value, Failure> {
    match answer.status {
        200..=299 => Ok(json!({"status": answer.status, "body": answer.json()})),
        408 | 425 | 429 | 500..=599 => Err(Failure::Transient {
            error: format!("HTTP {}", answer.status),
            retry_after: retry_after(&answer.headers, now_ms),
        }),
        status => Err(Failure::Permanent(format!("HTTP {status}: {}", truncate(&answer.json().to_string(), 300)))),
    }
}

/// `Retry-After` as delay-seconds or an HTTP date (RFC 9110 §10.2.3), capped at a day; `None` when absent or
/// unreadable.
pub fn retry_after(headers: &HeaderMap, now_ms: i64) -> Option<Duration> {
    let value = headers.get(hyper::header::RETRY_AFTER)?.to_str().ok()?.trim();
    let ms = match value.parse::<u64>() {
        Ok(seconds) => seconds.saturating_mul(1000),
        Err(_) => {
            let at = jiff::fmt::rfc2822::parse(value).ok()?.timestamp().as_millisecond();
            (at - now_ms).max(0) as u64
        }
    };
    Some(Duration::from_millis(ms.min(86_400_000)))
}

/// A header value from text a flow rendered (refused when it holds line breaks or other control characters).
pub fn header_value(name: &str, value: &str) -> Result<HeaderValue, Failure> {
    HeaderValue::from_str(value)
        .map_err(|_| Failure::permanent(format!("the `{name}` header holds characters a header cannot")))
}

pub(crate) fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

/// Whether a client error comes from the resolver refusing a private address (a permanent failure).
fn refused(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if e.is::<PrivateAddress>() {
            return true;
        }
        // An I/O error's `source` skips the error it wraps.
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io.get_ref().is_some_and(|inner| inner.is::<PrivateAddress>())
        {
            return true;
        }
        next = e.source();
    }
    false
}

/// An error and its causes, as one line.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(e) = next {
        let part = e.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        next = e.source();
    }
    text
}

/// The client's connector: it resolves the host (IP literals without a lookup, names on Tokio's blocking pool),
/// refuses private addresses unless allow-listed ([`GuardedResolver`]), and connects to the addresses it
/// checked, in order.
#[derive(Clone)]
pub struct GuardedConnector {
    resolver: Arc<GuardedResolver>,
}

impl tower_service::Service<hyper::Uri> for GuardedConnector {
    type Response = hyper_util::rt::TokioIo<tokio::net::TcpStream>;
    type Error = std::io::Error;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: hyper::Uri) -> Self::Future {
        let resolver = self.resolver.clone();
        Box::pin(async move {
            let host = uri.host().ok_or_else(|| std::io::Error::other(format!("`{uri}` has no host")))?.to_owned();
            let port = uri.port_u16().unwrap_or(if uri.scheme_str() == Some("https") { 443 } else { 80 });
            let literal = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().is_ok();
            let addrs = if literal {
                resolver.check(&host, port)?
            } else {
                let name = host.clone();
                tokio::task::spawn_blocking(move || resolver.check(&name, port))
                    .await
                    .map_err(std::io::Error::other)??
            };
            let mut last = None;
            for addr in addrs {
                match tokio::net::TcpStream::connect(addr).await {
                    Ok(stream) => {
                        stream.set_nodelay(true)?;
                        return Ok(hyper_util::rt::TokioIo::new(stream));
                    }
                    Err(e) => last = Some(e),
                }
            }
            Err(last.unwrap_or_else(|| std::io::Error::other(format!("{host} has no address"))))
        })
    }
}

/// Name resolution with the guard: it resolves, then refuses private addresses unless allow-listed (by host name
/// or by address). The refusal is a [`PrivateAddress`] inside an I/O error of kind `PermissionDenied`, which the
/// client treats as permanent (other I/O errors, `EPERM` from a firewall included, stay transient).
#[derive(Debug)]
pub struct GuardedResolver {
    pub allow_private: Vec<String>,
}

impl GuardedResolver {
    pub fn check(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => (bare, port).to_socket_addrs()?.collect(),
        };
        if self.allow_private.iter().any(|a| a.eq_ignore_ascii_case(bare)) {
            return Ok(addrs);
        }
        if let Some(private) =
            addrs.iter().find(|a| is_private(a.ip()) && !self.allow_private.iter().any(|x| *x == a.ip().to_string()))
        {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                PrivateAddress(format!(
                    "{bare} resolves to {}, a private address; allow it in the connector's `allow_private`",
                    private.ip()
                )),
            ));
        }
        Ok(addrs)
    }
}

/// Why [`GuardedResolver`] refused a destination.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PrivateAddress(String);

/// Loopback, private, link-local, shared (CGNAT), unspecified, broadcast, multicast, documentation and
/// benchmarking ranges, and their IPv6 counterparts (with IPv4-mapped addresses judged as IPv4).
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            // Forms that carry an IPv4 address inside: mapped (::ffff:a.b.c.d), the deprecated compatible form
            // (::a.b.c.d), NAT64 (64:ff9b::a.b.c.d, RFC 6052) and 6to4 (2002:aabb:ccdd::, RFC 3056). Each reaches
            // the IPv4 address it carries, so it is private when that address is.
            let embedded = |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            if s[..6] == [0; 6] && !v6.is_loopback() && !v6.is_unspecified() {
                return is_private(IpAddr::V4(embedded(s[6], s[7])));
            }
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                return is_private(IpAddr::V4(embedded(s[6], s[7])));
            }
            if s[0] == 0x2002 {
                return is_private(IpAddr::V4(embedded(s[1], s[2])));
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local, fc00::/7
                || (s[0] & 0xffc0) == 0xfe80 // link local, fe80::/10
                || (s[0] & 0xffc0) == 0xfec0 // site local, fec0::/10 (deprecated, still routed privately)
                || s[0] == 0x2001 && s[1] == 0x0db8 // documentation, 2001:db8::/32
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resolver_refuses_private_addresses_unless_allowed() {
        let strict = GuardedResolver { allow_private: Vec::new() };
        for (host, port) in [
            ("127.0.0.1", 80),
            ("[::1]", 8080),
            ("localhost", 80),
            ("169.254.169.254", 80),
            ("10.0.0.1", 80),
            ("10.255.3.4", 443),
        ] {
            let err = strict.check(host, port).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied, "{host}");
            assert!(err.get_ref().is_some_and(|e| e.is::<PrivateAddress>()), "{host}: {err}");
            assert!(err.to_string().contains("allow_private"), "{err}");
        }
        assert_eq!(strict.check("8.8.8.8", 443).unwrap(), vec!["8.8.8.8:443".parse::<SocketAddr>().unwrap()]);
        let by_address = GuardedResolver { allow_private: vec!["127.0.0.1".into()] };
        assert_eq!(by_address.check("127.0.0.1", 9).unwrap(), vec!["127.0.0.1:9".parse::<SocketAddr>().unwrap()]);
        assert!(by_address.check("10.0.0.1", 9).is_err());
        let by_name = GuardedResolver { allow_private: vec!["LOCALHOST".into()] };
        assert!(!by_name.check("localhost", 9).unwrap().is_empty());
    }

    #[test]
    fn private_addresses_are_recognised() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "::10.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "2002:c0a8:101::1",
            "fec0::1",
            "2001:db8::1",
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"] {
            assert!(!is_private(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers, 0), None);
        headers.insert(hyper::header::RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers, 0), Some(Duration::from_secs(7)));
        headers.insert(hyper::header::RETRY_AFTER, HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"));
        let at = 784_111_777_000i64;
        assert_eq!(retry_after(&headers, at - 3_000), Some(Duration::from_secs(3)));
        assert_eq!(retry_after(&headers, at + 3_000), Some(Duration::ZERO), "a date in the past: now");
        headers.insert(hyper::header::RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers, 0), None);
        headers.insert(hyper::header::RETRY_AFTER, HeaderValue::from_static("99999999"));
        assert_eq!(retry_after(&headers, 0), Some(Duration::from_secs(86_400)), "capped at a day");
    }

    #[test]
    fn statuses_are_read_the_same_way_for_every_connector() {
        let answer = |status, body: &'static str| Answer { status, headers: HeaderMap::new(), body: body.into() };
        assert_eq!(classify(&answer(201, r#"{"id":"c1"}"#), 0).unwrap(), json!({"status": 201, "body": {"id": "c1"}}));
        for status in [408, 425, 429, 500, 502, 503] {
            assert!(matches!(classify(&answer(status, ""), 0), Err(Failure::Transient { .. })), "{status}");
        }
        for status in [400, 401, 403, 404, 410, 422] {
            match classify(&answer(status, "bad field `name`"), 0) {
                Err(Failure::Permanent(e)) => assert!(e.contains("bad field"), "{e}"),
                other => panic!("{status}: {other:?}"),
            }
        }
    }

    #[test]
    fn urls_are_checked_before_anything_is_sent() {
        assert!(parse_url("https://slack.com/api/chat.postMessage").is_ok());
        for bad in ["ftp://x/y", "/relative", "http://", "not a url"] {
            assert!(matches!(parse_url(bad), Err(Failure::Permanent(_))), "{bad}");
        }
    }
}
