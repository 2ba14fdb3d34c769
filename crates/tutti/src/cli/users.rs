//! `tutti users`: the people who sign in to the console, and their roles. Uses the admin token, so the first
//! admin is added from the machine Tutti runs on.

use std::io::Read;

use anyhow::Context;
use clap::Subcommand;
use serde_json::{Value, json};
use tutti_engine::people::Role;

use crate::cli::client::{Client, encode, print};

/// A role as the command line takes it, by the engine's one list of roles.
fn role(text: &str) -> Result<Role, String> {
    Role::parse(text).ok_or_else(|| {
        let roles: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
        format!("`{text}` is not a role: {}", roles.join(", "))
    })
}

#[derive(Subcommand)]
pub(crate) enum UsersCommand {
    /// Add someone with a role. Without --password-stdin a password is made and printed once.
    Add {
        email: String,
        /// viewer, marketer, approver or admin.
        #[arg(long, value_parser = role)]
        role: Role,
        #[arg(long, default_value = "")]
        name: String,
        /// Read the password from standard input (10 to 64 characters) instead of making one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Everyone, with their roles.
    List {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Remove someone: they can no longer sign in.
    Remove { email: String },
    /// Give someone a new password (printed once, or read with --password-stdin).
    ResetPassword {
        email: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Give someone another role.
    SetRole {
        email: String,
        /// viewer, marketer, approver or admin.
        #[arg(long, value_parser = role)]
        role: Role,
    },
}

/// The password to set: read from standard input (one line, its newline dropped), or made here.
fn password(from_stdin: bool) -> anyhow::Result<(String, bool)> {
    if !from_stdin {
        return Ok((tutti_engine::people::generated_password(), true));
    }
    let mut text = String::new();
    std::io::stdin().take(4096).read_to_string(&mut text).context("cannot read the password from standard input")?;
    Ok((text.trim_end_matches(['\n', '\r']).to_owned(), false))
}

pub(crate) fn users(command: UsersCommand, client: &Client) -> anyhow::Result<()> {
    match command {
        UsersCommand::Add { email, role, name, password_stdin } => {
            let (password, made) = password(password_stdin)?;
            let body = json!({"email": email, "name": name, "role": role.as_str(), "password": password});
            let person = client.send("POST", "/api/v1/people", Some(&body))?;
            say!("added {} as {}", person["email"].as_str().unwrap_or(""), person["role"].as_str().unwrap_or(""));
            if made {
                say!("password (shown once): {password}");
            }
            Ok(())
        }
        UsersCommand::List { json } => {
            let page = client.call("GET", "/api/v1/people")?;
            if json {
                return print(&page);
            }
            let people = page["people"].as_array().cloned().unwrap_or_default();
            if people.is_empty() {
                say!("nobody yet: `tutti users add <email> --role admin` adds the first admin");
            }
            for p in &people {
                let text = |v: &Value| v.as_str().unwrap_or("").to_owned();
                say!("{}  {}  {}", text(&p["email"]), text(&p["role"]), text(&p["name"]));
            }
            Ok(())
        }
        UsersCommand::Remove { email } => {
            client.call("DELETE", &format!("/api/v1/people/{}", encode(&email)))?;
            say!("removed {}", email.trim().to_lowercase());
            Ok(())
        }
        UsersCommand::ResetPassword { email, password_stdin } => {
            let (password, made) = password(password_stdin)?;
            let path = format!("/api/v1/people/{}", encode(&email));
            client.send("PATCH", &path, Some(&json!({"password": password})))?;
            say!("a new password is set for {}", email.trim().to_lowercase());
            if made {
                say!("password (shown once): {password}");
            }
            Ok(())
        }
        UsersCommand::SetRole { email, role } => {
            let path = format!("/api/v1/people/{}", encode(&email));
            let person = client.send("PATCH", &path, Some(&json!({"role": role.as_str()})))?;
            say!("{} is now {}", person["email"].as_str().unwrap_or(""), person["role"].as_str().unwrap_or(""));
            Ok(())
        }
    }
}
