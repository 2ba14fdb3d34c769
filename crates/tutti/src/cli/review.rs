//! `tutti review`: copy checked against the review gate's rule packs, without a server.

use std::path::PathBuf;

use anyhow::Context;
use serde_json::Value;

#[derive(clap::Args)]
pub(crate) struct ReviewArgs {
    /// The copy to review (the message body); `-` reads it from standard input.
    text: String,
    /// A subject line, reviewed as its own field.
    #[arg(long)]
    subject: Option<String>,
    /// The channel, for length limits (email, sms, push, zalo, ...).
    #[arg(long, default_value = "email")]
    channel: String,
    /// The flow's category (promotional, transactional, ...): rules for advertising check promotional copy, and
    /// copy whose category is not given.
    #[arg(long)]
    category: Option<String>,
    /// The packs to apply, comma-separated (built in: general, finance, health).
    #[arg(long, value_delimiter = ',', default_value = "general")]
    packs: Vec<String>,
    /// A directory of pack files: each adds a pack, or replaces the built-in pack of its name.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The company's own contact details, allowed in any copy (a hotline, a support address); repeatable.
    #[arg(long = "allow")]
    allow: Vec<String>,
    /// Also print the copy repaired as the rules say (drop the sentence, add the disclosure, ...).
    #[arg(long)]
    revise: bool,
    /// Print the review as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn review(args: ReviewArgs) -> anyhow::Result<()> {
    use tutti_ai::review::{Draft, Gate, Recipient};
    let body = if args.text == "-" {
        std::io::read_to_string(std::io::stdin()).context("cannot read standard input")?
    } else {
        args.text.clone()
    };
    let gate = Gate::load(args.dir.as_deref())?.allow_contacts(args.allow.iter().cloned());
    let selection = gate.select(&args.packs)?;
    let mut fields = Vec::new();
    if let Some(subject) = &args.subject {
        fields.push(("subject", subject.as_str()));
    }
    fields.push(("body", body.trim_end_matches('\n')));
    let mut draft = Draft::new(&args.channel, &fields);
    draft.category = args.category.clone();
    let review = gate.review(&draft, &Recipient::default(), selection);
    let revised = if args.revise && !review.passed { gate.revise(&draft, &review) } else { None };
    if args.json {
        let revised = revised.as_ref().map(|d| {
            d.fields
                .iter()
                .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                .collect::<serde_json::Map<String, Value>>()
        });
        say!("{}", serde_json::json!({"passed": review.passed, "violations": review.violations, "revised": revised}));
    } else {
        for v in &review.violations {
            let severity = if v.severity == tutti_ai::review::Severity::Warn { " (warning)" } else { "" };
            let detail = if v.detail.is_empty() { String::new() } else { format!(" ({})", v.detail) };
            say!(
                "{} {}[{}..{}] \u{ab}{}\u{bb}: {}{detail}{severity}",
                v.rule,
                v.field,
                v.start,
                v.end,
                v.excerpt,
                v.says
            );
        }
        say!(
            "{} ({} violation(s); packs: {})",
            if review.passed { "passed" } else { "failed" },
            review.violations.len(),
            args.packs.join(", ")
        );
        if let Some(d) = &revised {
            let again = gate.review(d, &Recipient::default(), selection);
            say!("revised ({}):", if again.passed { "passes" } else { "still fails" });
            for (field, value) in &d.fields {
                say!("  {field}: {value}");
            }
        }
    }
    if !review.passed {
        std::process::exit(1);
    }
    Ok(())
}
