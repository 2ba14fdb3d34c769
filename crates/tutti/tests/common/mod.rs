//! Black-box test harness: the real `tutti` binary on an ephemeral port with its own data directory.
#![allow(dead_code)]

pub mod browser;
pub mod postgres_server;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;

pub const WRITE_KEY: &str = "test-write-key";
pub const ADMIN_TOKEN: &str = "test-admin-token";
/// The erasure key of workers that share a database in a test (64 hex digits).
pub const SHARED_ERASURE_KEY: &str = "5e1f0000000000000000000000000000000000000000000000000000000000aa";

/// A running `tutti serve`.
pub struct Server {
    child: Option<Child>,
    pub url: String,
    pub dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    agent: ureq::Agent,
    /// What the server wrote to stdout after it started listening (its log), line by line.
    output: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// The NATS server its log is on, when the suite runs on NATS (`TUTTI_TEST_BUS=nats`).
    pub nats: Option<tutti_log::nats::testing::NatsServer>,
    /// The other workers sharing its processing (`TUTTI_TEST_WORKERS`), with their addresses.
    companions: Vec<(Child, String)>,
}

/// Whether the suite keeps profiles, flows and the outbox in Postgres (`TUTTI_TEST_STORE=postgres`, the
/// machine's server at 127.0.0.1:5432, a schema per data directory) rather than SQLite.
pub fn on_postgres() -> bool {
    std::env::var("TUTTI_TEST_STORE").is_ok_and(|store| store == "postgres")
}

/// The machine's Postgres, as the suite reaches it (trust auth, database `test`).
const POSTGRES_ADMIN: &str = "host=127.0.0.1 port=5432 user=root dbname=test";

/// The Postgres schema of a data directory: made if missing, so a server started again on the directory finds
/// what the last one left.
fn postgres_schema(dir: &Path) -> String {
    let name = schema_name(dir);
    let mut admin = tutti_store::postgres::connect(POSTGRES_ADMIN)
        .expect("TUTTI_TEST_STORE=postgres needs Postgres at 127.0.0.1:5432 (scripts/test.sh starts it)");
    admin.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {name}")).expect("a schema for the test");
    name
}

/// The rows of a data directory's Postgres schema as `pg_dump` writes them (`BYTEA` in hex), or `None` when the
/// directory has none.
pub fn postgres_data(dir: &Path) -> Option<Vec<u8>> {
    let output = Command::new("pg_dump")
        .args(["-d", POSTGRES_ADMIN, "--data-only", "-n"])
        .arg(schema_name(dir))
        .output()
        .ok()?;
    output.status.success().then_some(output.stdout)
}

/// A Postgres schema of its own for processes that share it (several workers), dropped with this.
pub struct SharedSchema {
    name: String,
    /// The connection string the processes take (`TUTTI_STORAGE__POSTGRES`).
    pub url: String,
}

impl SharedSchema {
    pub fn new() -> SharedSchema {
        let dir = tempfile::tempdir().expect("temp dir");
        let name = postgres_schema(dir.path());
        let url = format!("{POSTGRES_ADMIN} options='-c search_path={name}'");
        SharedSchema { name, url }
    }
}

impl Drop for SharedSchema {
    fn drop(&mut self) {
        if let Ok(mut admin) = tutti_store::postgres::connect(POSTGRES_ADMIN) {
            let _ = admin.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
        }
    }
}

fn schema_name(dir: &Path) -> String {
    format!("tutti_suite_{:016x}", tutti_core::hash::fnv1a(dir.to_string_lossy().as_bytes()))
}

/// Whether the suite runs with the event log on NATS JetStream (`TUTTI_TEST_BUS=nats`, as the second
/// configuration of `scripts/test.sh`) rather than SQLite.
pub fn on_nats() -> bool {
    std::env::var("TUTTI_TEST_BUS").is_ok_and(|bus| bus == "nats")
}

/// How many workers share each server's processing when the suite runs on NATS and Postgres
/// (`TUTTI_TEST_WORKERS`, 1 unless set): the server and as many less one in the role `worker`.
pub fn test_workers() -> usize {
    std::env::var("TUTTI_TEST_WORKERS").ok().and_then(|n| n.parse().ok()).unwrap_or(1)
}

/// Starts `tutti serve` and waits until it listens; its log goes on into `output`.
fn launch(mut command: Command, output: &std::sync::Arc<std::sync::Mutex<Vec<String>>>) -> (Child, String) {
    let mut child = command.spawn().expect("spawn tutti");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let url = loop {
        let line = lines.next().expect("tutti exited before listening").expect("read stdout");
        if let Some(rest) = line.strip_prefix("Tutti listening on ") {
            break rest.split_whitespace().next().expect("url").to_owned();
        }
    };
    // Keep draining stdout so the server never blocks on a full pipe, keeping it for tests of the log.
    let kept = output.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            kept.lock().unwrap().push(line);
        }
    });
    (child, url)
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

impl Server {
    /// Starts a server with a fresh data directory.
    pub fn start() -> Server {
        let temp = tempfile::tempdir().expect("temp dir");
        let mut server = Server::start_in(temp.path(), &[]);
        server._temp = Some(temp);
        server
    }

    /// Starts a server with a fresh data directory and extra environment variables.
    pub fn start_from_temp(env: &[(&str, &str)]) -> Server {
        let temp = tempfile::tempdir().expect("temp dir");
        let mut server = Server::start_in(temp.path(), env);
        server._temp = Some(temp);
        server
    }

    /// Starts a server on an existing data directory, with extra environment variables.
    pub fn start_in(dir: &Path, env: &[(&str, &str)]) -> Server {
        Server::start_from(dir, dir, env)
    }

    /// Starts a server with a fresh data directory whose `[connectors.ai]` routes `task` (`plan`, `question`,
    /// ...) to the OpenAI stand-in of `vendors`.
    pub fn start_with_model(vendors: &tutti_connectors::testing::Vendors, task: &str) -> Server {
        Server::start_with_models(vendors, &[task], &[])
    }

    /// Starts a server with a fresh data directory whose `[connectors.ai]` routes each of `tasks` to the OpenAI
    /// stand-in of `vendors`, with `extra` environment variables besides.
    pub fn start_with_models(
        vendors: &tutti_connectors::testing::Vendors,
        tasks: &[&str],
        extra: &[(&str, &str)],
    ) -> Server {
        let temp = tempfile::tempdir().expect("temp dir");
        let base = vendors.openai_base();
        let routes: Vec<String> =
            tasks.iter().map(|t| format!("TUTTI_CONNECTORS__AI__ROUTES__{}", t.to_uppercase())).collect();
        let mut env = vec![
            ("TUTTI_CONNECTORS__AI__PROVIDERS__OPENAI__BASE_URL", base.as_str()),
            ("TUTTI_CONNECTORS__AI__PROVIDERS__OPENAI__MODEL", "gpt-4o-mini"),
            ("TUTTI_CONNECTORS__AI__PROVIDERS__OPENAI__API_KEY_ENV", "T_OPENAI_KEY"),
            ("TUTTI_CONNECTORS__AI__PROVIDERS__OPENAI__ALLOW_PRIVATE", "[\"127.0.0.1\"]"),
            ("T_OPENAI_KEY", tutti_connectors::testing::OPENAI_KEY),
        ];
        env.extend(routes.iter().map(|r| (r.as_str(), "openai")));
        env.extend_from_slice(extra);
        let mut server = Server::start_in(temp.path(), &env);
        server._temp = Some(temp);
        server
    }

    /// A server running the S6 flow (`examples/s6-personal-copy`), its emails posted to the `send` receiver of
    /// `vendors`, with `extra` environment variables besides.
    pub fn start_s6(vendors: &tutti_connectors::testing::Vendors, extra: &[(&str, &str)]) -> Server {
        Server::start_s6_with(vendors, &[], extra)
    }

    /// [`Server::start_s6`], with more flow files (name, YAML) beside the S6 flow.
    pub fn start_s6_with(
        vendors: &tutti_connectors::testing::Vendors,
        flows_too: &[(&str, &str)],
        extra: &[(&str, &str)],
    ) -> Server {
        let temp = tempfile::tempdir().expect("temp dir");
        let flows = temp.path().join("s6-flows");
        std::fs::create_dir(&flows).unwrap();
        let example = repo_root().join("examples/s6-personal-copy/personal-thanks.yaml");
        let source = std::fs::read_to_string(example)
            .unwrap()
            .replace("http://127.0.0.1:9400/send-email", &vendors.hook_url("send"));
        std::fs::write(flows.join("personal-thanks.yaml"), source).unwrap();
        for (name, yaml) in flows_too {
            std::fs::write(flows.join(name), yaml).unwrap();
        }
        let flows_dir = flows.to_str().unwrap().to_owned();
        let mut env = vec![
            ("TUTTI_FLOWS__DIR", flows_dir.as_str()),
            ("TUTTI_CONNECTORS__WEBHOOK__ALLOW_PRIVATE", "[\"127.0.0.1\"]"),
        ];
        env.extend_from_slice(extra);
        let mut server = Server::start_in(temp.path(), &env);
        server._temp = Some(temp);
        server
    }

    /// [`Server::start_in`], run from the working directory `cwd`.
    pub fn start_from(dir: &Path, cwd: &Path, env: &[(&str, &str)]) -> Server {
        // On NATS, each data directory has its own NATS server, its store inside the directory, so a server
        // started again on the same directory finds the same log.
        let nats = on_nats().then(|| {
            tutti_log::nats::testing::NatsServer::start_at(&dir.join("nats"), true)
                .expect("TUTTI_TEST_BUS=nats needs nats-server (./scripts/test.sh installs it)")
        });
        let schema = on_postgres().then(|| postgres_schema(dir));
        // With `TUTTI_TEST_WORKERS`, more workers share the server's log and schema, each with a data directory
        // of its own inside the server's (so what a test finds in the directory covers them too); their log
        // goes with the server's. Not for tests that place their processes themselves (a role, a log of their
        // own).
        let places_itself = env.iter().any(|(k, _)| *k == "TUTTI_SERVER__ROLE" || *k == "TUTTI_BUS__NATS");
        let shared = nats.is_some() && schema.is_some() && !places_itself && test_workers() > 1;
        let command = |data: &Path| {
            let mut command = Command::new(env!("CARGO_BIN_EXE_tutti"));
            command
                .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
                .arg(data)
                .current_dir(cwd)
                .env("TUTTI_WRITE_KEY", WRITE_KEY)
                .env("TUTTI_ADMIN_TOKEN", ADMIN_TOKEN)
                .env("TUTTI_LOG__LEVEL", "warn")
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit());
            if let Some(nats) = &nats {
                command.env("TUTTI_BUS__NATS", nats.url());
            }
            if let Some(schema) = &schema {
                command.env("TUTTI_STORAGE__POSTGRES", format!("{POSTGRES_ADMIN} options='-c search_path={schema}'"));
            }
            if shared {
                // Workers sharing a database share the key their tombstones are made with.
                command.env("TUTTI_AUTH__ERASURE_KEY", SHARED_ERASURE_KEY);
            }
            for (k, v) in env {
                command.env(k, v);
            }
            command
        };
        let output = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (child, url) = launch(command(dir), &output);
        let companions = if shared {
            (1..test_workers())
                .map(|n| {
                    let mut worker = command(&dir.join(format!("worker-{n}")));
                    worker.env("TUTTI_SERVER__ROLE", "worker");
                    launch(worker, &output)
                })
                .collect()
        } else {
            Vec::new()
        };
        Server { child: Some(child), url, dir: dir.to_owned(), _temp: None, agent: agent(), output, nats, companions }
    }

    /// The server's log so far (what it wrote to stdout after it started listening).
    pub fn output(&self) -> String {
        self.output.lock().unwrap().join("\n")
    }

    /// SIGKILL: no shutdown hook runs. The workers sharing its processing go too.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill");
            child.wait().expect("wait");
        }
        for (mut companion, _) in self.companions.drain(..) {
            let _ = companion.kill();
            let _ = companion.wait();
        }
    }

    pub fn basic_auth() -> String {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{WRITE_KEY}:")))
    }

    /// POSTs raw bytes with the given headers; returns the status and the JSON body (Null when not JSON).
    pub fn post_raw(&self, path: &str, body: &[u8], headers: &[(&str, &str)]) -> (u16, Value) {
        let mut request = self.agent.post(format!("{}{path}", self.url));
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let mut response = request.send(body).expect("request");
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// POSTs JSON to the tracking API with the write key.
    pub fn track(&self, path: &str, body: &Value) -> (u16, Value) {
        let auth = Server::basic_auth();
        self.post_raw(
            path,
            body.to_string().as_bytes(),
            &[("Authorization", &auth), ("Content-Type", "application/json")],
        )
    }

    pub fn request(&self, method: &str, path: &str, token: Option<&str>) -> (u16, Value) {
        let url = format!("{}{path}", self.url);
        let mut request = match method {
            "DELETE" => self.agent.delete(&url),
            _ => self.agent.get(&url),
        };
        if let Some(t) = token {
            request = request.header("Authorization", format!("Bearer {t}"));
        }
        let mut response = request.call().expect("request");
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// PUTs a body (YAML) to the admin API with the admin token.
    pub fn put(&self, path: &str, body: &str) -> (u16, Value) {
        let mut response = self
            .agent
            .put(format!("{}{path}", self.url))
            .header("Authorization", format!("Bearer {ADMIN_TOKEN}"))
            .header("Content-Type", "application/yaml")
            .send(body)
            .expect("request");
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// GET on the admin API with the admin token; panics unless 200.
    pub fn admin(&self, path: &str) -> Value {
        let (status, body) = self.request("GET", path, Some(ADMIN_TOKEN));
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// A profile after every event received so far has been processed.
    pub fn profile(&self, key: &str) -> (u16, Value) {
        self.request("GET", &format!("/api/v1/profiles/{key}?consistent=true"), Some(ADMIN_TOKEN))
    }

    /// The whole event log, oldest first.
    pub fn all_events(&self) -> Vec<Value> {
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let page = self.admin(&format!("/api/v1/events?after={after}&limit=1000"));
            let events = page["events"].as_array().expect("events").clone();
            if events.is_empty() {
                return out;
            }
            after = events.last().unwrap()["seq"].as_u64().unwrap();
            out.extend(events);
        }
    }

    /// A metric of the server's; a counter (`_total`) summed over the workers sharing its processing, since
    /// each counts what it did.
    pub fn metric(&self, name: &str) -> f64 {
        let read = |url: &str| -> f64 {
            let text = self
                .agent
                .get(format!("{url}/metrics"))
                .header("Authorization", &format!("Bearer {ADMIN_TOKEN}"))
                .call()
                .expect("metrics")
                .into_body()
                .read_to_string()
                .expect("metrics text");
            text.lines()
                .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
                .unwrap_or_else(|| panic!("metric {name} not found"))
                .trim()
                .parse()
                .expect("metric value")
        };
        let mut value = read(&self.url);
        if name.ends_with("_total") {
            value += self.companions.iter().map(|(_, url)| read(url)).sum::<f64>();
        }
        value
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
        // A server that owned its data directory leaves nothing behind: its Postgres schema goes with it.
        if on_postgres() && self._temp.is_some() {
            let name = schema_name(&self.dir);
            if let Ok(mut admin) = tutti_store::postgres::connect(POSTGRES_ADMIN) {
                let _ = admin.batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"));
            }
        }
    }
}

/// The repository root.
/// A flow that posts every `Pinged` event to `url` through the webhook connector (transactional, so no policy
/// stops it): the tests' way to make a delivery, or with a fault injected a dead letter.
pub fn ping_flow(url: &str) -> String {
    format!(
        "flow: ping\ncategory: transactional\ntrigger: {{ event: Pinged }}\nentry: {{ every_time: true }}\nsteps:\n  - id: call\n    action: webhook.post\n    with: {{ url: '{url}', who: '{{{{ event.userId }}}}' }}\n"
    )
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repo root")
}

/// Waits (bounded, 30 s) until `done`.
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::yield_now();
    }
}

/// Runs the CLI against the server with the admin token: whether it succeeded, and its stdout and stderr.
pub fn cli(server: &Server, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tutti"))
        .args(args)
        .args(["--url", &server.url, "--token", ADMIN_TOKEN])
        .output()
        .expect("run tutti");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// `tutti` with a person's personal token instead of the admin token (as `TUTTI_TOKEN`).
pub fn cli_as(server: &Server, token: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tutti"))
        .args(args)
        .args(["--url", &server.url])
        .env("TUTTI_TOKEN", token)
        .env_remove("TUTTI_ADMIN_TOKEN")
        .output()
        .expect("run tutti");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// Adds someone with a role, signs them in over the API and makes them a personal token; the token.
pub fn personal_token(server: &Server, email: &str, role: &str) -> String {
    let password = "một mật khẩu dài cho API";
    let person = serde_json::json!({"email": email, "role": role, "password": password});
    assert_eq!(post_admin(server, "/api/v1/people", &person).0, 201);
    let mut signed_in = agent()
        .post(&format!("{}/api/v1/sessions", server.url))
        .header("Content-Type", "application/json")
        .send(serde_json::json!({"email": email, "password": password}).to_string())
        .expect("sign in");
    assert_eq!(signed_in.status().as_u16(), 201);
    let cookie = signed_in.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let session: Value = serde_json::from_str(&signed_in.body_mut().read_to_string().unwrap()).unwrap();
    let mut made = agent()
        .post(&format!("{}/api/v1/tokens", server.url))
        .header("Content-Type", "application/json")
        .header("Cookie", &cookie)
        .header("X-CSRF-Token", session["csrf"].as_str().expect("the session's CSRF token"))
        .send(serde_json::json!({"name": "tests"}).to_string())
        .expect("make a token");
    assert_eq!(made.status().as_u16(), 201);
    let made: Value = serde_json::from_str(&made.body_mut().read_to_string().unwrap()).unwrap();
    made["token"].as_str().expect("the token").to_owned()
}

/// POSTs JSON to the admin API with a bearer token (the admin's or a person's).
pub fn post_as(server: &Server, token: &str, path: &str, body: &Value) -> (u16, Value) {
    server.post_raw(
        path,
        body.to_string().as_bytes(),
        &[("Authorization", &format!("Bearer {token}")), ("Content-Type", "application/json")],
    )
}

/// The conversations store a server on `dir` keeps: its conversations.db, or on Postgres
/// (`TUTTI_TEST_STORE=postgres`) its schema's tables.
pub fn conversation_store(dir: &Path) -> tutti_conversations::store::ConversationStore {
    use tutti_conversations::store::{ConversationStore, PgConversationTables};
    if on_postgres() {
        let url = format!("{POSTGRES_ADMIN} options='-c search_path={}'", schema_name(dir));
        let pool = tutti_store::postgres::pool::Pool::new(&url, 1).unwrap();
        return ConversationStore::on(Box::new(PgConversationTables::new(pool)));
    }
    ConversationStore::open(&dir.join("conversations.db")).unwrap()
}

/// A data directory whose creatives hold the synthetic S6 campaign (creatives, tags and daily performance): in
/// its creatives.db, or on Postgres (`TUTTI_TEST_STORE=postgres`) in the schema its server will use.
pub fn seeded_creatives(dir: &Path) {
    use tutti_store::CreativeStore;
    use tutti_store::postgres as pg;
    let store: Box<dyn CreativeStore> = if on_postgres() {
        let url = format!("{POSTGRES_ADMIN} options='-c search_path={}'", postgres_schema(dir));
        pg::migrate::migrate(&mut pg::connect(&url).unwrap()).unwrap();
        Box::new(pg::creatives::PgCreativeStore::new(pg::pool::Pool::new(&url, 1).unwrap()))
    } else {
        Box::new(tutti_store::sqlite::SqliteCreativeStore::open(&dir.join("creatives.db")).unwrap())
    };
    let campaign = tutti_insights::synth::generate(&tutti_insights::synth::Spec::s6(3));
    store.put_creatives(&campaign.creatives).unwrap();
    store.put_performance(&campaign.performance).unwrap();
}

/// POSTs JSON to the admin API with the admin token.
pub fn post_admin(server: &Server, path: &str, body: &Value) -> (u16, Value) {
    server.post_raw(
        path,
        body.to_string().as_bytes(),
        &[("Authorization", &format!("Bearer {ADMIN_TOKEN}")), ("Content-Type", "application/json")],
    )
}

/// A server whose tutti.toml points every connector at the stand-ins, with the flows of `examples/<story>`.
pub fn start_story(
    vendors: &tutti_connectors::testing::Vendors,
    story: &str,
    extra_env: &[(&str, &str)],
) -> (Server, tempfile::TempDir) {
    let data = tempfile::tempdir().unwrap();
    let mut connectors = toml::Table::new();
    for (name, table) in vendors.connectors() {
        connectors.insert(name, toml::Value::try_from(table).unwrap());
    }
    let mut config = toml::Table::new();
    config.insert("connectors".into(), toml::Value::Table(connectors));
    std::fs::write(data.path().join("tutti.toml"), toml::to_string(&config).unwrap()).unwrap();
    let flows = repo_root().join("examples").join(story);
    let flows = flows.to_str().unwrap().to_owned();
    let mut env: Vec<(&str, &str)> = vec![("TUTTI_FLOWS__DIR", flows.as_str())];
    env.extend_from_slice(tutti_connectors::testing::ENV);
    env.extend_from_slice(extra_env);
    let server = Server::start_in(data.path(), &env);
    (server, data)
}

/// POSTs conversations as JSON lines to the import route with a bearer token; the status and the summary.
pub fn import_conversations(server: &Server, token: &str, lines: &str) -> (u16, Value) {
    server.post_raw(
        "/api/v1/conversations/import",
        lines.as_bytes(),
        &[("Authorization", &format!("Bearer {token}")), ("Content-Type", "application/x-ndjson")],
    )
}

/// Conversations as JSON lines, as `tutti conversations import` reads them.
pub fn conversation_lines(conversations: &[tutti_conversations::Conversation]) -> String {
    conversations.iter().map(|c| serde_json::to_string(c).unwrap() + "\n").collect()
}

/// HubSpot's v3 signature headers (with the JSON content type) for a POST of `body` to `path` under
/// `https://mkt.example.vn`, the public URL the tests' hook files give, signed now with `secret`.
#[allow(dead_code)]
pub fn hubspot_headers(secret: &str, path: &str, body: &[u8]) -> Vec<(String, String)> {
    use hmac::Mac;
    let ts = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis().to_string();
    let uri = format!("https://mkt.example.vn{path}");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    for part in [b"POST".as_slice(), uri.as_bytes(), body, ts.as_bytes()] {
        mac.update(part);
    }
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    vec![
        ("X-HubSpot-Request-Timestamp".into(), ts),
        ("X-HubSpot-Signature-v3".into(), signature),
        ("Content-Type".into(), "application/json".into()),
    ]
}
