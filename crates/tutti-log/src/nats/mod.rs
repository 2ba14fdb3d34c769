//! A NATS client for what Tutti asks of NATS: JetStream's API, publishing with acknowledgements, and reading a
//! stream back. Blocking, as the threads that use it (the intake's writer, the processor) are.
//!
//! - `wire.rs`: the protocol's operations, parsed and written (pure).
//! - `connection.rs`: one connection, its handshake, keepalive and the routing of answers.
//! - `jetstream.rs`: JetStream's API over a connection.
//!
//! TLS and NKey/JWT credentials are not spoken: user and password or a token in the URL are. A server that
//! requires TLS is refused at connection with that reason.

pub mod connection;
pub mod jetstream;
#[cfg(feature = "testing")]
pub mod testing;
pub mod wire;

use std::time::Duration;

pub use connection::{Connection, Request, ServerInfo};
pub use jetstream::JetStream;

/// Why a NATS call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NatsError {
    #[error("cannot connect to NATS: {0}")]
    Connect(String),
    /// The connection ended; the owner connects again.
    #[error("the connection to NATS is lost: {0}")]
    Lost(String),
    #[error("NATS did not answer within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Protocol(String),
    /// `-ERR` from the server.
    #[error("NATS refused: {0}")]
    Server(String),
    #[error("nobody answers on {0}: is JetStream enabled on the NATS server?")]
    NoResponders(String),
    #[error("a message of {size} bytes is over the server's max_payload of {max}")]
    TooLarge { size: usize, max: usize },
    /// JetStream answered with an error.
    #[error("JetStream: {description} (status {code}, error {err_code})")]
    Api { code: u16, err_code: u32, description: String },
}

impl NatsError {
    /// Whether connecting again may help (as opposed to a refusal that will repeat).
    pub fn is_transient(&self) -> bool {
        matches!(self, NatsError::Connect(_) | NatsError::Lost(_) | NatsError::Timeout(_) | NatsError::NoResponders(_))
    }
}

/// One server to try: host, port and credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Server {
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
}

impl Server {
    /// `host:port`, for connecting and for logs: never the credentials.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "nats://{}", self.address())
    }
}

/// How to connect.
#[derive(Debug, Clone)]
pub struct Options {
    /// Tried in order; the first that answers is used.
    pub servers: Vec<Server>,
    /// The connection's name, as the server's monitoring shows it.
    pub name: String,
    pub connect_timeout: Duration,
}

impl Options {
    /// Reads `nats://[user:password@|token@]host[:port]`, several separated by commas (the servers of one
    /// cluster). The port defaults to 4222.
    pub fn parse(urls: &str, name: &str) -> Result<Options, String> {
        let mut servers = Vec::new();
        for url in urls.split(',').map(str::trim).filter(|u| !u.is_empty()) {
            servers.push(parse_server(url)?);
        }
        if servers.is_empty() {
            return Err("no NATS server is given".into());
        }
        Ok(Options { servers, name: name.to_owned(), connect_timeout: Duration::from_secs(5) })
    }
}

fn parse_server(url: &str) -> Result<Server, String> {
    let rest = match url.split_once("://") {
        Some(("nats", rest)) => rest,
        Some(("tls", _)) => return Err("tls:// is not supported: Tutti speaks NATS without TLS".into()),
        Some((scheme, _)) => return Err(format!("{scheme}:// is not a NATS URL (nats://host:port)")),
        None => url,
    };
    let rest = rest.trim_end_matches('/');
    let (auth, host_port) = match rest.rsplit_once('@') {
        Some((auth, host_port)) => (Some(auth), host_port),
        None => (None, rest),
    };
    let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or("an IPv6 address without its closing ]")?;
        (host, after.strip_prefix(':'))
    } else {
        match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    if host.is_empty() || host.contains(['/', '?', '#', ' ']) {
        return Err("a NATS URL without a host".into());
    }
    let port = match port {
        Some(p) => p.parse::<u16>().map_err(|_| "a NATS URL whose port is not a number".to_owned())?,
        None => 4222,
    };
    let decode = |text: &str| {
        form_urlencoded::parse(format!("x={}", text.replace('+', "%2B")).as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let (user, password, token) = match auth {
        Some(auth) => match auth.split_once(':') {
            Some((user, password)) => (Some(decode(user)), Some(decode(password)), None),
            None => (None, None, Some(decode(auth))),
        },
        None => (None, None, None),
    };
    Ok(Server { host: host.to_owned(), port, user, password, token })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_read_into_servers_without_showing_secrets() {
        let o = Options::parse("nats://tutti:p%40ss+w@nats-1:4223, nats-2 ,nats://s3cret@[::1]", "t").unwrap();
        assert_eq!(o.servers.len(), 3);
        let first = &o.servers[0];
        assert_eq!((first.host.as_str(), first.port), ("nats-1", 4223));
        assert_eq!((first.user.as_deref(), first.password.as_deref()), (Some("tutti"), Some("p@ss+w")));
        assert_eq!((o.servers[1].address(), o.servers[1].token.clone()), ("nats-2:4222".to_owned(), None));
        assert_eq!(o.servers[2].token.as_deref(), Some("s3cret"));
        assert_eq!(o.servers[2].address(), "[::1]:4222");
        let shown = format!("{o:?}");
        assert!(!shown.contains("p@ss") && !shown.contains("s3cret"), "{shown}");
        for bad in ["", "http://x", "tls://x", "nats://:4222", "nats://x:port", "nats://[::1"] {
            assert!(Options::parse(bad, "t").is_err(), "{bad}");
        }
    }
}
