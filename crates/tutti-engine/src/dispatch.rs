//! The dispatcher: delivers the outbox, at least once, to the built-in connectors.
//!
//! It reads pending actions in order, in rounds, and hands them to a pool of `[webhook] concurrency` delivery
//! threads: a profile's actions go to the same thread, one after another, so they arrive in order while
//! different profiles' actions are delivered side by side. It records the outcomes of a round in one
//! transaction: delivered (with
//! the connector's result, handed back to the run when it awaits it), retried later with exponential backoff
//! (network errors, 429 and 5xx), or a dead letter (other 4xx, a refused address, attempts exhausted). An
//! action delivered but not yet marked so when the process dies is delivered again at the next start: the
//! `Idempotency-Key` header (the run, step and visit) lets the receiver see it is the same action.
//!
//! The webhook connector refuses private, loopback and link-local addresses unless the host is allow-listed
//! in `[webhook] allow_private`, so flows cannot be turned against the network Tutti runs in. The check sits in
//! the HTTP client's resolver ([`GuardedResolver`]): the addresses checked are the addresses connected to, so a
//! name that resolves to a public address for a check and to a private one a moment later (DNS rebinding)
//! gains nothing. IP literals are not looked up at all, and no thread is spawned per request.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tutti_bus::LogFeed;
use tutti_core::Millis;
use tutti_core::flow::Dispatch;
use tutti_store::{Outbox, OutboxRow, Outcome};

use crate::clock::Clock;
use crate::config::WebhookConfig;
use crate::metrics::Metrics;
use crate::processor::ActionResult;

/// Actions taken from the outbox per round.
const ROUND: usize = 1024;
/// The longest wait between retries.
const MAX_BACKOFF_MS: Millis = 3_600_000;
/// The most of a response body kept as the action's result.
const MAX_RESULT_BYTES: u64 = 64 * 1024;

pub(crate) struct Dispatcher {
    pub outbox: Box<dyn Outbox>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    pub results: mpsc::Sender<ActionResult>,
    /// Bumped by the processor when it queues actions; closed at shutdown.
    pub feed: Arc<dyn LogFeed>,
    pub webhook: WebhookConfig,
}

/// What one attempt came to.
struct Attempt {
    outcome: Outcome,
    result: Option<Value>,
}

/// What the delivery threads share: everything but the outbox, which only the dispatcher's thread touches.
struct Deliverer {
    clock: Arc<dyn Clock>,
    webhook: WebhookConfig,
    agent: ureq::Agent,
}

/// One delivery thread's share of a round: rows by their index in the round.
type Share = Vec<(usize, OutboxRow)>;

impl Dispatcher {
    pub fn run(mut self) {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(self.webhook.timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .max_idle_connections(self.webhook.concurrency.max(1) * 4)
            .max_idle_connections_per_host(self.webhook.concurrency.max(1))
            .build();
        let resolver = GuardedResolver { allow_private: self.webhook.allow_private.clone() };
        let agent = ureq::Agent::with_parts(config, ureq::unversioned::transport::DefaultConnector::new(), resolver);
        let deliverer = Arc::new(Deliverer { clock: self.clock.clone(), webhook: self.webhook.clone(), agent });
        let lanes = self.webhook.concurrency.max(1);
        let (done_tx, done) = mpsc::channel::<Vec<(usize, Attempt)>>();
        let mut workers = Vec::with_capacity(lanes);
        for lane in 0..lanes {
            let (tx, rx) = mpsc::channel::<(Share, Millis)>();
            let (deliverer, done_tx) = (deliverer.clone(), done_tx.clone());
            let spawned = std::thread::Builder::new().name(format!("tutti-deliver-{lane}")).spawn(move || {
                crate::processor::lower_priority("delivery thread");
                for (share, now) in rx {
                    let attempts = share.into_iter().map(|(i, row)| (i, deliverer.deliver(&row, now))).collect();
                    if done_tx.send(attempts).is_err() {
                        break;
                    }
                }
            });
            match spawned {
                Ok(_) => workers.push(tx),
                Err(e) => tracing::error!(error = %e, "cannot start a delivery thread; delivering with fewer"),
            }
        }
        drop(done_tx);
        let mut seen = self.feed.head();
        loop {
            let now = self.clock.now_ms();
            let rows = match self.outbox.due(now, ROUND) {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the outbox; retrying");
                    Vec::new()
                }
            };
            if rows.is_empty() {
                if self.feed.is_closed() {
                    break;
                }
                // Woken at once when actions are queued; otherwise looks again for retries coming due.
                seen = self.feed.wait_beyond(seen, Duration::from_millis(20));
                continue;
            }
            let attempts = self.round(&deliverer, &workers, &done, &rows, now);
            let mut outcomes = Vec::with_capacity(rows.len());
            let mut handed_back = Vec::new();
            for (row, attempt) in rows.iter().zip(attempts) {
                match &attempt.outcome {
                    Outcome::Done { .. } => {
                        self.metrics.actions_delivered.fetch_add(1, Ordering::Relaxed);
                        let waited = (self.clock.now_ms() - row.created_at).max(0);
                        self.metrics.dispatch_latency.observe(waited as f64 / 1000.0);
                    }
                    Outcome::Retry { error, .. } => {
                        self.metrics.actions_retried.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(key = %row.key, attempts = row.attempts + 1, %error, "delivery failed; will retry");
                    }
                    Outcome::Dead { error } => {
                        self.metrics.actions_dead.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(key = %row.key, %error, "delivery given up; kept as a dead letter");
                    }
                }
                if let Some(result) = attempt.result {
                    handed_back.push(ActionResult { profile: row.profile, key: row.key.clone(), result });
                }
                outcomes.push((row.seq, attempt.outcome));
            }
            if let Err(e) = self.outbox.settle(&outcomes) {
                // Not recorded: these are delivered again, which the idempotency key makes safe.
                tracing::error!(error = %e, "cannot record deliveries; they will be repeated");
                continue;
            }
            for result in handed_back {
                let _ = self.results.send(result);
            }
        }
    }

    /// Delivers one round across the delivery threads (a profile's rows to one thread, in order) and returns
    /// the attempts in the order of `rows`. Without threads, delivers here.
    fn round(
        &self,
        deliverer: &Deliverer,
        workers: &[mpsc::Sender<(Share, Millis)>],
        done: &mpsc::Receiver<Vec<(usize, Attempt)>>,
        rows: &[OutboxRow],
        now: Millis,
    ) -> Vec<Attempt> {
        let mut slots: Vec<Option<Attempt>> = rows.iter().map(|_| None).collect();
        if !workers.is_empty() {
            let mut shares: Vec<Share> = vec![Vec::new(); workers.len()];
            for (i, row) in rows.iter().enumerate() {
                shares[(row.profile.0 % workers.len() as u64) as usize].push((i, row.clone()));
            }
            let mut sent = 0;
            for (share, worker) in shares.into_iter().zip(workers) {
                if !share.is_empty() && worker.send((share, now)).is_ok() {
                    sent += 1;
                }
            }
            for _ in 0..sent {
                let Ok(attempts) = done.recv() else { break };
                for (i, attempt) in attempts {
                    slots[i] = Some(attempt);
                }
            }
        }
        // Whatever no thread answered for (none started, or one died) is delivered here.
        slots.into_iter().zip(rows).map(|(slot, row)| slot.unwrap_or_else(|| deliverer.deliver(row, now))).collect()
    }
}

impl Deliverer {
    fn deliver(&self, row: &OutboxRow, now: Millis) -> Attempt {
        let dispatch: Dispatch = match serde_json::from_slice(&row.body) {
            Ok(d) => d,
            Err(e) => return dead(format!("the stored action cannot be read: {e}")),
        };
        let delivered = match dispatch.connector.as_str() {
            "log" => {
                tracing::info!(target: "tutti::actions", key = %dispatch.key, flow = %dispatch.flow,
                    step = %dispatch.step, payload = %dispatch.payload, "log action");
                Ok(json!({"logged": true}))
            }
            "webhook" => self.webhook(&dispatch),
            other => Err(Failure::Permanent(format!("no connector named `{other}`"))),
        };
        match delivered {
            Ok(result) => Attempt {
                outcome: Outcome::Done { result: result.to_string() },
                result: dispatch.await_result.then_some(result),
            },
            Err(Failure::Permanent(error)) => Attempt {
                result: dispatch.await_result.then(|| json!({"error": error})),
                outcome: Outcome::Dead { error },
            },
            Err(Failure::Transient(error)) => {
                let attempts = row.attempts + 1;
                if attempts >= self.webhook.max_attempts.max(1) {
                    let error = format!("{error} (after {attempts} attempts)");
                    return Attempt {
                        result: dispatch.await_result.then(|| json!({"error": error})),
                        outcome: Outcome::Dead { error },
                    };
                }
                let backoff = (1_000i64 << (attempts - 1).min(22)).min(MAX_BACKOFF_MS);
                Attempt { outcome: Outcome::Retry { at: now + backoff, error }, result: None }
            }
        }
    }

    fn webhook(&self, dispatch: &Dispatch) -> Result<Value, Failure> {
        let Some(url) = dispatch.payload.get("url").and_then(Value::as_str) else {
            return Err(Failure::Permanent("a webhook action needs a `url` in its payload".into()));
        };
        let uri: ureq::http::Uri = url.parse().map_err(|e| Failure::Permanent(format!("`{url}` is not a URL: {e}")))?;
        let scheme = uri.scheme_str().unwrap_or("");
        if scheme != "http" && scheme != "https" {
            return Err(Failure::Permanent(format!("`{url}`: only http and https are allowed")));
        }
        if uri.host().is_none() {
            return Err(Failure::Permanent(format!("`{url}` has no host")));
        }
        let mut body = dispatch.payload.clone();
        if let Some(object) = body.as_object_mut() {
            object.remove("url");
        }
        let bytes = serde_json::to_vec(&body).expect("JSON serialises");
        let mut request = self
            .agent
            .post(url)
            .header("Content-Type", "application/json")
            .header("Idempotency-Key", &dispatch.key)
            .header("Tutti-Flow", &dispatch.flow)
            .header("Tutti-Step", &dispatch.step);
        if let Some(secret) = &self.webhook.signing_secret {
            let t = self.clock.now_ms() / 1000;
            let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
            mac.update(format!("{t}.").as_bytes());
            mac.update(&bytes);
            let signature: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
            request = request.header("Tutti-Signature", format!("t={t},v1={signature}"));
        }
        let mut response = request.send(&bytes[..]).map_err(|e| match e {
            ureq::Error::Io(io) if io.get_ref().is_some_and(|e| e.is::<PrivateAddress>()) => {
                Failure::Permanent(io.to_string())
            }
            other => Failure::Transient(other.to_string()),
        })?;
        let status = response.status().as_u16();
        let text = response.body_mut().with_config().limit(MAX_RESULT_BYTES).read_to_string().unwrap_or_default();
        let body = serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text));
        match status {
            200..=299 => Ok(json!({"status": status, "body": body})),
            408 | 425 | 429 | 500..=599 => Err(Failure::Transient(format!("HTTP {status}"))),
            _ => Err(Failure::Permanent(format!("HTTP {status}: {}", truncate(&body.to_string(), 200)))),
        }
    }
}

/// The webhook client's name resolver: it resolves, then refuses private addresses unless allow-listed (by host
/// name or by address). The refusal is a [`PrivateAddress`] inside an I/O error of kind `PermissionDenied`,
/// which the connector treats as permanent (other I/O errors, `EPERM` from a firewall included, stay transient).
#[derive(Debug)]
struct GuardedResolver {
    allow_private: Vec<String>,
}

impl GuardedResolver {
    fn check(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
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
                    "{bare} resolves to {}, a private address; allow it in [webhook] allow_private",
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
struct PrivateAddress(String);

impl ureq::unversioned::resolver::Resolver for GuardedResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        _config: &ureq::config::Config,
        _timeout: ureq::unversioned::transport::NextTimeout,
    ) -> Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        let host = uri.host().ok_or(ureq::Error::HostNotFound)?;
        let port = uri.port_u16().unwrap_or(if uri.scheme_str() == Some("https") { 443 } else { 80 });
        let addrs = self.check(host, port)?;
        let mut out = self.empty();
        // ureq keeps at most 16 addresses.
        for addr in addrs.into_iter().take(16) {
            out.push(addr);
        }
        if out.is_empty() { Err(ureq::Error::HostNotFound) } else { Ok(out) }
    }
}

enum Failure {
    Permanent(String),
    Transient(String),
}

fn dead(error: String) -> Attempt {
    Attempt { outcome: Outcome::Dead { error }, result: None }
}

fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

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
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resolver_refuses_private_addresses_unless_allowed() {
        let strict = GuardedResolver { allow_private: Vec::new() };
        for (host, port) in [("127.0.0.1", 80), ("[::1]", 8080), ("localhost", 80), ("169.254.169.254", 80)] {
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
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(!is_private(ip.parse().unwrap()), "{ip}");
        }
    }
}
