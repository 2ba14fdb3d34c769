//! Secrets named in configuration and read from the environment: a table says `token_env = "SLACK_TOKEN"`,
//! never the token itself, and the value is kept where no `Debug` or log line can show it.

use std::fmt;

/// Where secrets come from: the process environment in production, a map in tests.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// A secret read from the environment. Its `Debug` and `Display` never show it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Reads the variable `name` (the value of the config key `key`).
    pub fn from_env(env: Env<'_>, key: &str, name: &str) -> Result<Secret, String> {
        match env(name) {
            Some(value) if !value.trim().is_empty() => Ok(Secret(value.trim().to_owned())),
            Some(_) => Err(format!("the environment variable {name} (named by `{key}`) is empty")),
            None => Err(format!("the environment variable {name} (named by `{key}`) is not set")),
        }
    }

    /// A secret made from others (a header value carrying a token), kept as carefully.
    pub fn derived(value: String) -> Secret {
        Secret(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}
