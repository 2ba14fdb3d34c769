//! The admin API client every command but `serve`, `flows`, `review`, `hooks` and `insights` uses, and the one
//! printer of its answers.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use serde_json::Value;

#[derive(Args)]
pub(crate) struct ClientArgs {
    /// Base URL of the Tutti server.
    #[arg(long, global = true, env = "TUTTI_URL", default_value = "http://127.0.0.1:8910")]
    url: String,
    /// Admin token, or your personal API token (default: TUTTI_TOKEN, then TUTTI_ADMIN_TOKEN, else the admin
    /// token read from the data directory). Approvals need a personal token: they are decided by a person.
    #[arg(long, global = true)]
    token: Option<String>,
    /// Data directory to read the admin token from (the variable is the one `serve` reads too).
    #[arg(long, global = true, env = "TUTTI_STORAGE__DATA_DIR", default_value = "./tutti-data")]
    data_dir: PathBuf,
}

pub(crate) struct Client {
    agent: ureq::Agent,
    url: String,
    token: String,
}

impl Client {
    pub(crate) fn new(args: ClientArgs) -> anyhow::Result<Client> {
        let token = match args
            .token
            .or_else(|| std::env::var("TUTTI_TOKEN").ok())
            .or_else(|| std::env::var("TUTTI_ADMIN_TOKEN").ok())
        {
            Some(t) => t,
            None => {
                let path = args.data_dir.join(tutti_engine::secrets::SECRETS_FILE);
                tutti_engine::Secrets::stored_admin_token(&args.data_dir)
                    .with_context(|| format!("no --token, no TUTTI_ADMIN_TOKEN, and cannot read {}", path.display()))?
                    .with_context(|| {
                        format!("{} holds no admin_token: start the server once, or give --token", path.display())
                    })?
            }
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Ok(Client { agent, url: args.url.trim_end_matches('/').to_owned(), token })
    }

    pub(crate) fn call(&self, method: &str, path: &str) -> anyhow::Result<Value> {
        self.send(method, path, None)
    }

    pub(crate) fn send(&self, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.url);
        let auth = format!("Bearer {}", self.token);
        let response = match (method, body) {
            ("DELETE", _) => self.agent.delete(&url).header("Authorization", &auth).call(),
            ("POST", Some(body)) => self.agent.post(&url).header("Authorization", &auth).send_json(body),
            ("PATCH", Some(body)) => self.agent.patch(&url).header("Authorization", &auth).send_json(body),
            _ => self.agent.get(&url).header("Authorization", &auth).call(),
        };
        let mut response = response.with_context(|| format!("cannot reach {url}"))?;
        let status = response.status();
        if status == 204 {
            return Ok(Value::Null);
        }
        let body: Value =
            response.body_mut().read_json().with_context(|| format!("{url} answered {status} without JSON"))?;
        if !status.is_success() {
            let message = body["error"]["message"].as_str().unwrap_or("unknown error");
            let code = body["error"]["code"].as_str().unwrap_or("?");
            bail!("{status} {code}: {message}");
        }
        Ok(body)
    }
}

pub(crate) fn encode(key: &str) -> String {
    key.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' | b'@' | b'+' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `?limit=N` (1 to 1,000) and the parameters that are set, encoded.
pub(crate) fn query(limit: usize, params: &[(&str, &Option<String>)]) -> String {
    let mut query = format!("?limit={}", limit.clamp(1, 1000));
    for (key, value) in params {
        if let Some(v) = value {
            // `+` in a query means a space; times carry it as an offset.
            query.push_str(&format!("&{key}={}", encode(v).replace('+', "%2B")));
        }
    }
    query
}

pub(crate) fn print(value: &Value) -> anyhow::Result<()> {
    say!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
