//! `[connectors.sms]`: the provider and its credentials; each provider's keys are its own, and a key of
//! another provider is an error that names it.

use super::*;

#[derive(Deserialize)]
#[serde(tag = "provider", rename_all = "lowercase")]
pub(super) enum Config {
    Twilio(TwilioConfig),
    Esms(EsmsConfig),
    Alibaba(AlibabaConfig),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TwilioConfig {
    account_sid: String,
    auth_token_env: String,
    /// The sender: a phone number in E.164, or an alphanumeric sender id.
    #[serde(default)]
    from: Option<String>,
    /// Or a Messaging Service, which picks the sender itself.
    #[serde(default)]
    messaging_service_sid: Option<String>,
    /// Where Twilio posts status changes (Tutti's `/hooks/{source}` with the `sms-twilio` mapping).
    #[serde(default)]
    status_callback: Option<String>,
    #[serde(default = "twilio_base")]
    api_base: String,
    #[serde(default)]
    default_country_code: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EsmsConfig {
    api_key_env: String,
    secret_key_env: String,
    /// The registered brandname the message shows as its sender.
    brandname: String,
    /// eSMS's message type: 2 (customer care, the default) or 8 (fixed-price). Advertising (1) is sent in
    /// batches of at least 30 numbers approved beforehand, which a message per person is not.
    #[serde(default = "esms_type")]
    sms_type: u8,
    /// Where eSMS reports each message's result (an HTTP GET), with the hook's token in its query.
    #[serde(default)]
    callback_url: Option<String>,
    /// eSMS's sandbox: answered as if sent, not sent, not billed.
    #[serde(default)]
    sandbox: bool,
    #[serde(default = "esms_base")]
    api_base: String,
    #[serde(default = "vietnam")]
    default_country_code: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AlibabaConfig {
    access_key_id_env: String,
    access_key_secret_env: String,
    /// The registered signature (签名) carriers show in 【】.
    sign_name: String,
    #[serde(default = "alibaba_region")]
    region: String,
    #[serde(default = "alibaba_base")]
    api_base: String,
    #[serde(default = "china")]
    default_country_code: Option<String>,
}

fn twilio_base() -> String {
    "https://api.twilio.com".into()
}

fn esms_base() -> String {
    "https://rest.esms.vn".into()
}

fn alibaba_base() -> String {
    "https://dysmsapi.aliyuncs.com".into()
}

fn alibaba_region() -> String {
    "cn-hangzhou".into()
}

fn esms_type() -> u8 {
    2
}

fn vietnam() -> Option<String> {
    Some("84".into())
}

fn china() -> Option<String> {
    Some("86".into())
}

/// The provider, its credentials read: what the sender is built from.
pub(super) enum Provider {
    Twilio {
        account_sid: String,
        /// `Basic base64(account_sid:auth_token)`.
        auth: Secret,
        sender: TwilioSender,
        status_callback: Option<String>,
    },
    Esms {
        api_key: Secret,
        secret_key: Secret,
        brandname: String,
        sms_type: u8,
        callback_url: Option<String>,
        sandbox: bool,
    },
    Alibaba {
        access_key_id: Secret,
        access_key_secret: Secret,
        sign_name: String,
        region: String,
    },
}

pub(super) enum TwilioSender {
    From(String),
    Service(String),
}

pub(super) struct Checked {
    pub provider: Provider,
    pub api_base: String,
    pub default_country_code: Option<String>,
}

fn url(key: &str, value: &str) -> Result<(), String> {
    parse_url(value).map(|_| ()).map_err(|e| format!("`{key}`: {e}"))
}

pub(super) fn validate(table: &Value, cx: &Context<'_>) -> Result<Box<dyn CheckedConfig>, String> {
    if table.get("provider").is_none() {
        return Err("`provider` is twilio, esms or alibaba".into());
    }
    let config: Config = crate::config(table)?;
    let checked = match config {
        Config::Twilio(c) => {
            let token = Secret::from_env(cx.env, "auth_token_env", &c.auth_token_env)?;
            if !(c.account_sid.starts_with("AC") && c.account_sid.len() == 34) {
                return Err("`account_sid` is Twilio's account SID: `AC` and 32 hexadecimal digits".into());
            }
            let sender = match (c.from, c.messaging_service_sid) {
                (Some(from), None) if !from.trim().is_empty() => TwilioSender::From(from),
                (None, Some(sid)) if sid.starts_with("MG") => TwilioSender::Service(sid),
                _ => {
                    return Err("give one of `from` (a number or sender id) and `messaging_service_sid` (MG...)".into());
                }
            };
            if let Some(cb) = &c.status_callback {
                url("status_callback", cb)?;
            }
            url("api_base", &c.api_base)?;
            crate::phone::check_country_code(c.default_country_code.as_deref())?;
            use base64::Engine as _;
            let basic =
                base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.account_sid, token.expose()));
            Checked {
                provider: Provider::Twilio {
                    account_sid: c.account_sid,
                    auth: Secret::derived(format!("Basic {basic}")),
                    sender,
                    status_callback: c.status_callback,
                },
                api_base: c.api_base,
                default_country_code: c.default_country_code,
            }
        }
        Config::Esms(c) => {
            let api_key = Secret::from_env(cx.env, "api_key_env", &c.api_key_env)?;
            let secret_key = Secret::from_env(cx.env, "secret_key_env", &c.secret_key_env)?;
            if c.brandname.trim().is_empty() || c.brandname.chars().count() > 11 {
                return Err("`brandname` is the registered sender name, 1 to 11 characters".into());
            }
            if ![2, 8].contains(&c.sms_type) {
                return Err("`sms_type` is 2 (customer care) or 8 (fixed-price); advertising (1) goes in batches \
                            of 30 or more numbers, not a message per person"
                    .into());
            }
            if let Some(cb) = &c.callback_url {
                url("callback_url", cb)?;
            }
            url("api_base", &c.api_base)?;
            crate::phone::check_country_code(c.default_country_code.as_deref())?;
            Checked {
                provider: Provider::Esms {
                    api_key,
                    secret_key,
                    brandname: c.brandname,
                    sms_type: c.sms_type,
                    callback_url: c.callback_url,
                    sandbox: c.sandbox,
                },
                api_base: c.api_base,
                default_country_code: c.default_country_code,
            }
        }
        Config::Alibaba(c) => {
            let access_key_id = Secret::from_env(cx.env, "access_key_id_env", &c.access_key_id_env)?;
            let access_key_secret = Secret::from_env(cx.env, "access_key_secret_env", &c.access_key_secret_env)?;
            if c.sign_name.trim().is_empty() || c.sign_name.contains(['【', '】']) {
                return Err("`sign_name` is the registered signature, without 【】".into());
            }
            url("api_base", &c.api_base)?;
            crate::phone::check_country_code(c.default_country_code.as_deref())?;
            Checked {
                provider: Provider::Alibaba {
                    access_key_id,
                    access_key_secret,
                    sign_name: c.sign_name,
                    region: c.region,
                },
                api_base: c.api_base,
                default_country_code: c.default_country_code,
            }
        }
    };
    Ok(Box::new(Checked { api_base: checked.api_base.trim_end_matches('/').to_owned(), ..checked }))
}
