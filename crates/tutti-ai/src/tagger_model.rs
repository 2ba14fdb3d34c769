//! Tagging a creative with a model: the request (the taxonomy's traits as a JSON Schema whose values are the
//! taxonomy's own, each with a confidence and a justification) and the reading of its answer. A value outside
//! the taxonomy, or a trait left out, makes the answer unusable, and the caller tags locally instead.

use serde_json::{Value, json};

use crate::provider::{Message, Request, Schema, Task};
use crate::tagger::{Taxonomy, Text, TraitDecision};

/// The request for one creative's tags.
pub fn tag_request(taxonomy: &Taxonomy, t: Text<'_>) -> Request {
    let mut properties = serde_json::Map::new();
    let mut guide = Vec::new();
    for def in &taxonomy.traits {
        properties.insert(
            def.name.clone(),
            json!({"type": "object", "properties": {
                "value": {"type": "string", "enum": def.values},
                "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                "justification": {"type": "string"}},
                "required": ["value", "confidence", "justification"], "additionalProperties": false}),
        );
        guide.push(format!("{}: one of {}", def.name, def.values.join(", ")));
    }
    let names: Vec<&str> = taxonomy.traits.iter().map(|d| d.name.as_str()).collect();
    let system = format!(
        "You tag marketing creatives for analysis. For each trait give the one value that fits best, how sure you \
         are (0 to 1), and a one-sentence justification quoting the copy. Traits: {}. Tone is emotional when the \
         copy mainly appeals to feelings, rational when it gives facts, numbers or logic; purpose is educational \
         when it mainly informs, call_to_action when it asks for an immediate conversion; structure is \
         problem_first when the opening names a problem, a pain, a worry or a guide to one, solution_first when \
         it opens with the product, the benefit or the offer; offer is the main framing (a price cut: discount; a \
         free period or sample: free_trial; a time or quantity limit: scarcity; customers, ratings, awards or \
         testimonials: social_proof; value for money or savings told as numbers, without a cut: value; or none). \
         Answer in JSON with the given schema.",
        guide.join("; ")
    );
    let user = json!({"headline": t.headline, "body": t.body, "call_to_action": t.call_to_action}).to_string();
    let mut request = Request::new(Task::Tag, vec![Message::system(system), Message::user(user)]);
    request.schema = Some(Schema {
        name: "creative_tags".into(),
        schema: json!({"type": "object", "properties": properties, "required": names, "additionalProperties": false}),
    });
    request.temperature = Some(0.0);
    request
}

/// The decisions in a model's answer, each with its justification as the reason, or why it cannot be used.
pub fn decisions_of(taxonomy: &Taxonomy, answer: &Value) -> Result<Vec<TraitDecision>, String> {
    let mut out = Vec::new();
    for def in &taxonomy.traits {
        let v = &answer[&def.name];
        let value = v["value"].as_str().ok_or_else(|| format!("no value for `{}`", def.name))?;
        if !def.values.iter().any(|x| x == value) {
            return Err(format!("`{value}` is not a value of `{}`", def.name));
        }
        let justification: String = v["justification"].as_str().unwrap_or_default().chars().take(300).collect();
        out.push(TraitDecision {
            name: def.name.clone(),
            value: value.to_owned(),
            confidence: v["confidence"].as_f64().unwrap_or(0.0).clamp(0.0, 1.0),
            why: format!("model: {justification}"),
        });
    }
    Ok(out)
}
