//! `tutti audit`: the audit log as JSON Lines.

use clap::Args;

use crate::cli::client::{Client, query};

#[derive(Args)]
pub(crate) struct AuditArgs {
    /// `model_call`, `approval`, `sign_in`, `people`, `definition`, `replay`, `erasure` or `budget`.
    #[arg(long)]
    kind: Option<String>,
    #[arg(long)]
    flow: Option<String>,
    #[arg(long)]
    run: Option<String>,
    /// A profile id such as p42.
    #[arg(long)]
    profile: Option<String>,
    /// RFC 3339, inclusive.
    #[arg(long)]
    since: Option<String>,
    /// RFC 3339, exclusive.
    #[arg(long)]
    until: Option<String>,
}

/// Prints every matching audit record as one JSON line, a page at a time.
pub(crate) fn audit(filter: &AuditArgs, client: &Client) -> anyhow::Result<()> {
    let query = query(
        1000,
        &[
            ("kind", &filter.kind),
            ("flow", &filter.flow),
            ("run", &filter.run),
            ("profile", &filter.profile),
            ("since", &filter.since),
            ("until", &filter.until),
        ],
    );
    let mut after = 0u64;
    loop {
        let page = client.call("GET", &format!("/api/v1/audit{query}&after={after}"))?;
        for r in page["records"].as_array().into_iter().flatten() {
            say!("{}", serde_json::to_string(r)?);
        }
        match page["next"].as_u64() {
            Some(n) => after = n,
            None => return Ok(()),
        }
    }
}
