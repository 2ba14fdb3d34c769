//! Asana's REST API (`/asana/api/1.0/...`).

use axum::http::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};

use super::{ASANA_PROJECT, ASANA_TOKEN, ASANA_WORKSPACE, Outcome, State, header, is_json, next_id, refuse};

pub(super) fn asana_error(status: u16, message: &str) -> Outcome {
    refuse(status, json!({"errors": [{"message": message}]}), format!("asana: {message}"))
}

/// <https://developers.asana.com/reference/createtask>: `{"data": ...}` in, `{"errors": [...]}` on failure.
pub(super) fn asana(s: &mut State, method: &Method, rest: &str, headers: &HeaderMap, body: &[u8]) -> Outcome {
    if header(headers, "authorization") != format!("Bearer {ASANA_TOKEN}") {
        return asana_error(401, "Not Authorized");
    }
    if rest == "/users/me" && method == Method::GET {
        return Ok((StatusCode::OK, json!({"data": {"gid": "1", "name": "Tutti"}})));
    }
    if method != Method::POST || !is_json(headers) {
        return asana_error(400, "Bad Request");
    }
    let Ok(Value::Object(mut outer)) = serde_json::from_slice::<Value>(body) else {
        return asana_error(400, "Could not parse request data, invalid JSON");
    };
    let Some(Value::Object(data)) = outer.remove("data") else {
        return asana_error(400, "Missing input: data");
    };
    if rest == "/tasks" {
        let known = ["name", "notes", "projects", "workspace", "assignee", "due_on", "due_at"];
        if let Some(extra) = data.keys().find(|k| !known.contains(&k.as_str())) {
            return asana_error(400, &format!("{extra}: Unknown property"));
        }
        let projects_ok =
            data.get("projects").is_none_or(|p| p.as_array().is_some_and(|a| a.iter().all(|x| x == ASANA_PROJECT)));
        if !projects_ok {
            return asana_error(404, "projects: Unknown object");
        }
        if data.get("projects").is_none() && data.get("workspace").and_then(Value::as_str) != Some(ASANA_WORKSPACE) {
            return asana_error(400, "You should specify one of workspace, parent, projects");
        }
        if data.contains_key("due_on") && data.contains_key("due_at") {
            return asana_error(400, "You may only provide one of due_on or due_at");
        }
        if let Some(day) = data.get("due_on")
            && day.as_str().and_then(|d| d.parse::<jiff::civil::Date>().ok()).is_none()
        {
            return asana_error(400, "due_on: Invalid date");
        }
        if data.get("name").and_then(Value::as_str).is_none_or(|n| n.is_empty()) {
            return asana_error(400, "name: Missing input");
        }
        let gid = next_id(s, 16, false);
        let task = json!({"gid": gid, "resource_type": "task", "name": data["name"], "notes": data.get("notes").cloned().unwrap_or(json!("")),
            "permalink_url": format!("https://app.asana.com/0/{ASANA_PROJECT}/{gid}")});
        s.asana_tasks.insert(gid, task.clone());
        return Ok((StatusCode::CREATED, json!({"data": task})));
    }
    if let Some(task) = rest.strip_prefix("/tasks/").and_then(|r| r.strip_suffix("/stories")) {
        if !s.asana_tasks.contains_key(task) {
            return asana_error(404, &format!("task: Unknown object: {task}"));
        }
        if data.keys().any(|k| k != "text" && k != "html_text")
            || data.get("text").and_then(Value::as_str).is_none_or(|t| t.is_empty())
        {
            return asana_error(400, "text: Missing input");
        }
        let gid = next_id(s, 16, false);
        return Ok((StatusCode::CREATED, json!({"data": {"gid": gid, "type": "comment", "text": data["text"]}})));
    }
    asana_error(404, "No matching route for request")
}
