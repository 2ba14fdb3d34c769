//! `sms`: text messages through one provider, chosen by `provider`:
//!
//! - `twilio`: Twilio's Programmable Messaging (`twilio.rs`), worldwide.
//! - `esms`: eSMS, a Vietnamese brandname SMS provider (`esms.rs`): the registered brandname as the sender.
//! - `alibaba`: Alibaba Cloud SMS (`alibaba.rs`), for mainland China: a registered signature (签名) and
//!   template (模板), the message written by the provider from the template's code and its parameters.
//!
//! `sms.send` takes `to` (the phone, in any usual writing: `+84 912 345 678`, `0912345678` with the table's
//! `default_country_code`), and `body` (Twilio, eSMS) or `template` and `params` (Alibaba Cloud). The answer
//! names the provider's message id, and for a body its encoding and parts (GSM-7 or UCS-2, see
//! `tutti_ai::sms`), which are what carriers bill. Delivery receipts come back through Tutti's inbound hooks
//! (the `sms-twilio`, `sms-esms` and `sms-alibaba` mappings) as `SMS Delivered` and `SMS Failed` events.
//!
//! Idempotency: eSMS refuses a `RequestId` it has seen, which is the action's key (a repeat counts as
//! delivered); Alibaba Cloud keeps the key as `OutId`; Twilio has no idempotency key for messages, so a crash
//! between its answer and the record repeats at most the messages in flight (the dispatcher's `unrecorded`).

mod alibaba;
mod config;
mod esms;
mod twilio;

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value, json};

pub use alibaba::signature as alibaba_signature;

use crate::CheckedConfig;
use crate::http::{Http, parse_url};
use crate::{Action, Context, Delivery, Failure, Kind, Operation, Secret, Sender, Settings, optional_text, text};
use config::Provider;

pub static KIND: Kind = Kind {
    name: "sms",
    channel: "sms",
    operations: &[Operation::taking("send", &["to", "body", "template", "params"])],
    default_on: false,
    units: parts,
    validate: config::validate,
};

impl CheckedConfig for config::Checked {
    fn build(self: Box<Self>, settings: &Settings) -> Arc<dyn Sender> {
        Arc::new(Sms {
            http: Http::new(&settings.allow_private, settings.concurrency),
            provider: self.provider,
            api_base: self.api_base,
            default_country_code: self.default_country_code,
        })
    }
}

struct Sms {
    http: Http,
    provider: Provider,
    api_base: String,
    default_country_code: Option<String>,
}

/// One message on its way out, whatever the provider.
pub(super) struct Outgoing<'a> {
    /// The recipient's international digits (country code first, no `+`).
    to: String,
    /// The action's key, as the provider's own request id where it takes one (at most 64 characters).
    request_id: &'a str,
    flow: &'a str,
    now: i64,
}

impl Sms {
    fn provider_name(&self) -> &'static str {
        match self.provider {
            Provider::Twilio { .. } => "twilio",
            Provider::Esms { .. } => "esms",
            Provider::Alibaba { .. } => "alibaba",
        }
    }

    async fn send_one(&self, action: &Action<'_>) -> Result<Value, Failure> {
        KIND.check(action)?;
        let p = action.payload;
        let raw = text(p, "to", "send")?;
        let to = crate::phone::international(raw, self.default_country_code.as_deref()).ok_or_else(|| {
            Failure::permanent(
                "`to` is not a phone number (write it with its country code, or set default_country_code)",
            )
        })?;
        let message = Outgoing { to, request_id: action.key, flow: action.flow, now: action.now };
        let body = optional_text(p, "body")?;
        let template = optional_text(p, "template")?;
        let params = match p.get("params") {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => Some(m),
            Some(_) => return Err(Failure::permanent("`params` is a map of the template's parameters")),
        };
        let base = &self.api_base;
        let mut answer = match &self.provider {
            Provider::Alibaba { access_key_id, access_key_secret, sign_name, region } => {
                let Some(template) = template.filter(|_| body.is_none()) else {
                    return Err(Failure::permanent(
                        "Alibaba Cloud sends registered templates: give `template` (the template code) and \
                         `params`, not `body`",
                    ));
                };
                let params = params.map(stringify);
                alibaba::send(
                    &self.http,
                    base,
                    access_key_id,
                    access_key_secret,
                    sign_name,
                    region,
                    &message,
                    template,
                    params.as_ref(),
                )
                .await?
            }
            provider => {
                let Some(body) = body.filter(|_| template.is_none() && params.is_none()) else {
                    return Err(Failure::permanent(format!(
                        "`sms.send` through {} takes `to` and `body`",
                        self.provider_name()
                    )));
                };
                let mut answer = match provider {
                    Provider::Twilio { account_sid, auth, sender, status_callback } => {
                        twilio::send(
                            &self.http,
                            base,
                            account_sid,
                            auth,
                            sender,
                            status_callback.as_deref(),
                            &message,
                            body,
                        )
                        .await?
                    }
                    Provider::Esms { api_key, secret_key, brandname, sms_type, callback_url, sandbox } => {
                        esms::send(
                            &self.http,
                            base,
                            api_key,
                            secret_key,
                            brandname,
                            *sms_type,
                            callback_url.as_deref(),
                            *sandbox,
                            &message,
                            body,
                        )
                        .await?
                    }
                    Provider::Alibaba { .. } => unreachable!("matched above"),
                };
                let parts = tutti_ai::sms::segments(body);
                answer["encoding"] = json!(parts.encoding.name());
                answer["parts"] = json!(parts.parts);
                answer
            }
        };
        answer["provider"] = json!(self.provider_name());
        Ok(answer)
    }
}

/// An SMS bills per part: the body's parts in its encoding; a template (Alibaba Cloud) counts one.
fn parts(action: &Action<'_>) -> u64 {
    match action.payload.get("body").and_then(Value::as_str) {
        Some(body) => tutti_ai::sms::segments(body).parts.max(1) as u64,
        None => 1,
    }
}

/// Template parameters as text (Alibaba Cloud takes only strings).
fn stringify(params: &Map<String, Value>) -> Map<String, Value> {
    params
        .iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            (k.clone(), Value::String(text))
        })
        .collect()
}

impl Sender for Sms {
    fn send<'a>(&'a self, action: Action<'a>) -> Delivery<'a> {
        Box::pin(async move {
            match action.operation {
                "send" => self.send_one(&action).await,
                other => Err(crate::unknown_operation("sms", other)),
            }
        })
    }

    /// Reaches the provider's host with the configured client: a TLS handshake and an answer, no message sent
    /// (none of the three has a call that checks credentials without a side effect worth having).
    fn health(&self) -> Delivery<'_> {
        Box::pin(async move {
            let answer = self.http.json(hyper::Method::GET, &format!("{}/", self.api_base), &[], None).await?;
            Ok(json!({"provider": self.provider_name(), "reachable": true, "status": answer.status}))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_become_text() {
        let m: Map<String, Value> = serde_json::from_value(json!({"code": 1234, "name": "王伟", "x": null})).unwrap();
        assert_eq!(Value::Object(stringify(&m)), json!({"code": "1234", "name": "王伟", "x": ""}));
    }
}
