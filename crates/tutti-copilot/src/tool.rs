//! The copilot's typed tool for a model: `propose_plan`, whose arguments are a reading of the goal (the shape,
//! the audience, the channels, the budget, the timeframe, the holdout) in the planner's own terms, checked
//! against this JSON Schema by the provider layer before anything reads them. A model's answer is a plan,
//! never an action: the planner builds the plan from the reading exactly as from the local reader's, states
//! its assumptions, and a person approves it.

use serde_json::{Value, json};
use tutti_ai::text::Language;
use tutti_core::money::Money;

use crate::plan::Shape;
use crate::read::{Reading, words};

pub const NAME: &str = "propose_plan";

/// The tool's JSON Schema.
pub fn parameters() -> Value {
    let mut shapes: Vec<Value> = Shape::ALL.iter().map(|s| json!(s.name())).collect();
    shapes.push(json!("outside"));
    let mut cities: Vec<Value> = words::PLACES.iter().map(|(c, _)| json!(c)).collect();
    cities.push(Value::Null);
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["shape", "vip", "city", "bought_at_least", "channels", "budget", "days", "holdout"],
        "properties": {
            "shape": {"type": "string", "enum": shapes,
                      "description": "The goal's kind; `outside` when it is none of them."},
            "vip": {"type": "boolean", "description": "Only high-value customers."},
            "city": {"type": ["string", "null"], "enum": cities},
            "bought_at_least": {"type": ["integer", "null"], "minimum": 1, "maximum": 100,
                                "description": "Only customers who ordered at least this many times."},
            "channels": {"type": "array", "items": {"type": "string", "enum": ["email", "zalo", "sms"]}, "maxItems": 3},
            "budget": {"type": ["object", "null"], "additionalProperties": false, "required": ["amount", "currency"],
                       "properties": {"amount": {"type": "number", "minimum": 0},
                                      "currency": {"type": "string", "pattern": "^[A-Z]{3}$"}}},
            "days": {"type": ["integer", "null"], "minimum": 1, "maximum": 365},
            "holdout": {"type": ["number", "null"], "minimum": 0, "maximum": 0.5}
        }
    })
}

/// What the tool tells the model.
pub const DESCRIPTION: &str = "Propose the plan for the marketer's goal, in the terms of Tutti's planner. Read only what \
the goal says: leave a field null (or false, or empty) when the goal does not say it. Use `outside` when the goal \
is not one of the shapes.";

/// The reading the tool's arguments give (already checked against [`parameters`]); `None` for `outside`.
pub fn reading(args: &Value, goal: &str) -> Result<Option<Reading>, String> {
    let shape = args["shape"].as_str().ok_or("`shape` is missing")?;
    if shape == "outside" {
        return Ok(None);
    }
    let shape = Shape::ALL.iter().find(|s| s.name() == shape).copied().ok_or_else(|| format!("no shape `{shape}`"))?;
    let language = match tutti_ai::text::detect(goal) {
        Language::Other => Language::En,
        l => l,
    };
    let budget = match &args["budget"] {
        Value::Null => None,
        b => Some((Money::from_value(b)?, true)),
    };
    let mut channels: Vec<String> = Vec::new();
    for c in args["channels"].as_array().into_iter().flatten().filter_map(Value::as_str) {
        if !words::CHANNELS.iter().any(|w| w.name == c) {
            return Err(format!("no channel `{c}`"));
        }
        if !channels.iter().any(|k| k == c) {
            channels.push(c.to_owned());
        }
    }
    let city = match args["city"].as_str() {
        None => None,
        Some(c) if words::PLACES.iter().any(|(p, _)| *p == c) => Some(c.to_owned()),
        Some(c) => return Err(format!("no city `{c}`")),
    };
    Ok(Some(Reading {
        language,
        shapes: vec![shape],
        vip: args["vip"] == true,
        city,
        repeat: args["bought_at_least"].as_u64().map(|n| n as u32),
        channels,
        budget,
        days: args["days"].as_u64().map(|d| d as u32),
        no_holdout: args["holdout"].as_f64() == Some(0.0),
        holdout: args["holdout"].as_f64().filter(|h| *h > 0.0),
    }))
}
