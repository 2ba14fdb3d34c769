//! Alibaba Cloud SMS (Dysmsapi 2017-05-25), `SendSms`
//! (<https://help.aliyun.com/zh/sms/developer-reference/api-dysmsapi-2017-05-25-sendsms>), called the RPC way
//! (<https://help.aliyun.com/zh/sdk/product-overview/rpc-mechanism>): a form body with the common parameters
//! (`Action`, `Version`, `Format`, `AccessKeyId`, `SignatureMethod` HMAC-SHA1, `SignatureVersion` 1.0, a
//! `SignatureNonce` never reused, `Timestamp` in UTC, `RegionId`) and the call's own (`PhoneNumbers`,
//! `SignName`, `TemplateCode`, `TemplateParam` as JSON text, `OutId`), signed: the parameters sorted by name,
//! each name and value percent-encoded (RFC 3986, upper-case hex, space as `%20`), joined with `&` and `=`;
//! `StringToSign = "POST&%2F&" + percentEncode(that)`; `Signature = base64(HMAC-SHA1(secret + "&",
//! StringToSign))`. Mainland numbers are the eleven digits without 86. The answer's `Code` is `OK` with a
//! `BizId`, or the reason: `isv.BUSINESS_LIMIT_CONTROL` and `Throttling.*` (over the rate),
//! `isv.AMOUNT_NOT_ENOUGH`, `isv.MOBILE_NUMBER_ILLEGAL`, `isv.SMS_TEMPLATE_ILLEGAL`, `isv.SMS_SIGNATURE_ILLEGAL`,
//! `SignatureDoesNotMatch`, ...

use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value, json};

use super::Outgoing;
use crate::http::{Http, percent_encode, truncate};
use crate::{Failure, Secret};

/// Makes every `SignatureNonce` of this process different, retries included.
static NONCE: AtomicU64 = AtomicU64::new(0);

/// The signature of a POST with these parameters (the `Signature` itself not among them).
pub fn signature(secret: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let canonical: Vec<String> =
        sorted.iter().map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v))).collect();
    let to_sign = format!("POST&%2F&{}", percent_encode(&canonical.join("&")));
    let mut mac =
        Hmac::<sha1::Sha1>::new_from_slice(format!("{secret}&").as_bytes()).expect("HMAC takes keys of any length");
    mac.update(to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn send(
    http: &Http,
    api_base: &str,
    access_key_id: &Secret,
    access_key_secret: &Secret,
    sign_name: &str,
    region: &str,
    message: &Outgoing<'_>,
    template: &str,
    params: Option<&Map<String, Value>>,
) -> Result<Value, Failure> {
    let phone = match message.to.strip_prefix("86") {
        Some(mainland) if mainland.len() == 11 => mainland.to_owned(),
        _ => message.to.to_owned(),
    };
    let timestamp = jiff::Timestamp::from_millisecond(message.now)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default();
    let nonce = format!("{:x}-{:x}-{}", message.now, NONCE.fetch_add(1, Ordering::Relaxed), std::process::id());
    let mut fields: Vec<(String, String)> = [
        ("Action", "SendSms"),
        ("Version", "2017-05-25"),
        ("Format", "JSON"),
        ("AccessKeyId", access_key_id.expose()),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
        ("SignatureNonce", &nonce),
        ("Timestamp", &timestamp),
        ("RegionId", region),
        ("PhoneNumbers", &phone),
        ("SignName", sign_name),
        ("TemplateCode", template),
        ("OutId", message.request_id),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    if let Some(params) = params {
        fields.push(("TemplateParam".into(), Value::Object(params.clone()).to_string()));
    }
    let signed = signature(access_key_secret.expose(), &fields);
    fields.push(("Signature".into(), signed));
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let answer = http.form(hyper::Method::POST, &format!("{api_base}/"), &[], &pairs).await?;
    let v = answer.json();
    let code = v["Code"].as_str().unwrap_or_default();
    if code == "OK" && (200..300).contains(&answer.status) {
        return Ok(json!({"id": v["BizId"], "status": "accepted"}));
    }
    let why = format!(
        "Alibaba Cloud SMS answered {} {code}: {}",
        answer.status,
        truncate(v["Message"].as_str().unwrap_or_default(), 200)
    );
    let transient = answer.status >= 500
        || answer.status == 429
        || code == "isv.BUSINESS_LIMIT_CONTROL"
        || code == "isv.AMOUNT_NOT_ENOUGH"
        || code.starts_with("Throttling")
        || code == "ServiceUnavailable"
        || code == "InternalError";
    Err(if transient { Failure::transient(why) } else { Failure::permanent(why) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding_is_rfc_3986_with_upper_case_hex() {
        assert_eq!(percent_encode("a b*c~d/é"), "a%20b%2Ac~d%2F%C3%A9");
    }

    #[test]
    fn the_signature_is_over_the_sorted_encoded_parameters() {
        // Worked by hand from the documented algorithm: the string to sign, then HMAC-SHA1 with "secret&",
        // checked with `printf 'POST&%%2F&A%%3D1%%26B%%3Dx%%2520y' | openssl dgst -sha1 -hmac 'secret&' -binary |
        // base64`.
        let params = vec![("B".to_owned(), "x y".to_owned()), ("A".to_owned(), "1".to_owned())];
        assert_eq!(signature("secret", &params), "HrjBzJ2CKapCjNv2M59uamioxok=");
    }
}
