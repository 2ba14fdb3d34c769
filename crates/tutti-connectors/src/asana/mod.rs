//! `asana`: tasks in Asana projects.
//!
//! Follows Asana's API reference (<https://developers.asana.com/reference/createtask> and
//! <https://developers.asana.com/reference/createstoryfortask>):
//! - `create_task`: `POST {api_base}/tasks` with `{"data": {...}}`: `name`, `notes`, `projects` (gids), or
//!   `workspace` when there is no project (Asana requires one of the two), `assignee` (a gid, an email or
//!   `me`), `due_on` (`YYYY-MM-DD`) or `due_at` (an ISO 8601 date-time).
//! - `comment`: `POST {api_base}/tasks/{task_gid}/stories` with `{"data": {"text": ...}}`.
//! - `upsert_task`: one task per `topic_key`, created by the first action and commented on by every later one
//!   (`comment`, or else the `notes`), as Trello's `upsert_card`.
//!
//! A personal access token or a service account token goes in `Authorization: Bearer`. Asana answers errors
//! as `{"errors": [{"message": ...}]}` and rate limits as 429 with `Retry-After`. It takes no idempotency key.
//!
//! Configuration: `token_env`, `workspace` (gid), `default_project` (gid), `api_base` (default
//! `https://app.asana.com/api/1.0`).

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::CheckedConfig;
use crate::http::{Http, classify, parse_url};
use crate::{
    Action, Context, Delivery, Failure, Kind, Operation, Secret, Sender, Settings, Topics, optional_text, text,
};

mod config;

pub static KIND: Kind = Kind {
    name: "asana",
    channel: "tasks",
    operations: &[
        Operation::taking("create_task", &["name", "notes", "project", "assignee", "due_on", "due_at"]),
        Operation::taking("comment", &["task", "text"]),
        Operation::taking(
            "upsert_task",
            &["topic_key", "comment", "name", "notes", "project", "assignee", "due_on", "due_at"],
        ),
    ],
    default_on: false,
    units: crate::per_action,
    validate: config::validate,
};

fn is_gid(text: &str) -> bool {
    !text.is_empty() && text.len() <= 32 && text.bytes().all(|b| b.is_ascii_digit())
}

fn gid<'a>(text: &'a str, key: &str) -> Result<&'a str, Failure> {
    if is_gid(text) {
        Ok(text)
    } else {
        Err(Failure::permanent(format!("`{key}` `{text}` is not an Asana gid (digits)")))
    }
}
impl CheckedConfig for config::Checked {
    fn build(self: Box<Self>, settings: &Settings) -> Arc<dyn Sender> {
        Arc::new(Asana {
            http: Http::new(&settings.allow_private, settings.concurrency),
            topics: Topics::new(KIND.name, self.memory),
            auth: self.auth,
            workspace: self.workspace,
            default_project: self.default_project,
            api_base: self.api_base,
        })
    }
}

struct Asana {
    http: Http,
    topics: Topics,
    auth: Secret,
    workspace: Option<String>,
    default_project: Option<String>,
    api_base: String,
}

impl Asana {
    async fn post(&self, path: &str, data: Value, now: i64) -> Result<Value, Failure> {
        let url = format!("{}{path}", self.api_base);
        let body = json!({"data": data});
        let answer =
            self.http.json(hyper::Method::POST, &url, &[("authorization", self.auth.expose())], Some(&body)).await?;
        classify(&answer, now)
    }

    async fn create_task(&self, action: Action<'_>) -> Result<Value, Failure> {
        KIND.check(&action)?;
        self.create(action.payload, action.now).await
    }

    async fn create(&self, p: &Value, now: i64) -> Result<Value, Failure> {
        let mut data = Map::new();
        data.insert("name".into(), json!(text(p, "name", "create_task")?));
        if let Some(notes) = optional_text(p, "notes")? {
            data.insert("notes".into(), json!(notes));
        }
        match optional_text(p, "project")?.or(self.default_project.as_deref()) {
            Some(project) => {
                data.insert("projects".into(), json!([gid(project, "project")?]));
            }
            None => match &self.workspace {
                Some(workspace) => {
                    data.insert("workspace".into(), json!(workspace));
                }
                None => {
                    return Err(Failure::permanent(
                        "`create_task` needs a `project` (or `default_project` or `workspace` in [connectors.asana])",
                    ));
                }
            },
        }
        if let Some(assignee) = optional_text(p, "assignee")? {
            data.insert("assignee".into(), json!(assignee));
        }
        match (optional_text(p, "due_on")?, optional_text(p, "due_at")?) {
            (Some(_), Some(_)) => return Err(Failure::permanent("give `due_on` or `due_at`, not both")),
            (Some(day), None) => {
                let date: jiff::civil::Date = day
                    .parse()
                    .map_err(|_| Failure::permanent(format!("`due_on` `{day}` is not a date such as 2026-12-01")))?;
                data.insert("due_on".into(), json!(date.to_string()));
            }
            (None, Some(at)) => {
                let at: jiff::Timestamp =
                    at.parse().map_err(|_| Failure::permanent(format!("`due_at` `{at}` is not a date-time")))?;
                data.insert("due_at".into(), json!(at.to_string()));
            }
            (None, None) => {}
        }
        self.post("/tasks", Value::Object(data), now).await
    }

    async fn upsert_task(&self, action: Action<'_>) -> Result<Value, Failure> {
        let p = action.payload;
        let comment = |task: String, report: u64| async move {
            let text = optional_text(p, "comment")?.or(optional_text(p, "notes")?).unwrap_or("+1");
            let body = json!({"text": crate::numbered(report, text)});
            self.post(&format!("/tasks/{}/stories", gid(&task, "task")?), body, action.now).await
        };
        KIND.check(&action)?;
        let create = || self.create(p, action.now);
        let up = self
            .topics
            .upsert(
                text(p, "topic_key", "upsert_task")?,
                action.key,
                comment,
                create,
                id_of,
                "Asana answered a task without a gid",
            )
            .await?;
        Ok(json!({"task": up.id, "created": up.created, "topic": up.topic, "reports": up.reports, "answer": up.answer}))
    }

    async fn comment(&self, action: Action<'_>) -> Result<Value, Failure> {
        KIND.check(&action)?;
        let task = gid(text(action.payload, "task", "comment")?, "task")?;
        let text = text(action.payload, "text", "comment")?;
        self.post(&format!("/tasks/{task}/stories"), json!({"text": text}), action.now).await
    }
}

impl Sender for Asana {
    fn send<'a>(&'a self, action: Action<'a>) -> Delivery<'a> {
        Box::pin(async move {
            match action.operation {
                "create_task" => self.create_task(action).await,
                "comment" => self.comment(action).await,
                "upsert_task" => self.upsert_task(action).await,
                other => Err(crate::unknown_operation("asana", other)),
            }
        })
    }

    /// `GET /users/me`.
    fn health(&self) -> Delivery<'_> {
        Box::pin(async move {
            let url = format!("{}/users/me", self.api_base);
            let answer =
                self.http.json(hyper::Method::GET, &url, &[("authorization", self.auth.expose())], None).await?;
            classify(&answer, 0)
        })
    }
}

/// The id in a create answer.
fn id_of(answer: &Value) -> Option<&str> {
    answer["body"]["data"]["gid"].as_str()
}
