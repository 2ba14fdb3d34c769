//! SMS providers: Twilio (`/twilio/...`), eSMS (`/esms/...`) and Alibaba Cloud SMS (`/alibaba-sms/`), each
//! enforcing the request format its documentation gives (cited in `crate::sms`).

use std::collections::BTreeMap;

use axum::http::{HeaderMap, Method, StatusCode};
use base64::Engine as _;
use serde_json::{Value, json};

use super::{
    ALIBABA_KEY_ID, ALIBABA_SECRET, ALIBABA_SIGN, ALIBABA_TEMPLATE, ESMS_API_KEY, ESMS_BRANDNAME, ESMS_SECRET_KEY,
    Outcome, State, TWILIO_SID, TWILIO_TOKEN, header, is_json, next_id, refuse,
};

/// A form body as its fields (the last value of a repeated name wins).
pub(super) fn form(body: &[u8]) -> BTreeMap<String, String> {
    form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

fn is_form(headers: &HeaderMap) -> bool {
    header(headers, "content-type").split(';').next().is_some_and(|t| t.trim() == "application/x-www-form-urlencoded")
}

/// One message as a provider accepted it.
#[derive(Debug, Clone, PartialEq)]
pub struct SmsSent {
    pub provider: &'static str,
    /// The number as the request gave it.
    pub to: String,
    /// The text, or for Alibaba Cloud the template code and its parameters as JSON.
    pub body: String,
    pub id: String,
}

/// Twilio's "Create a Message resource": Basic auth, a form with `To`, `From` or `MessagingServiceSid`, `Body`.
pub(super) fn twilio(s: &mut State, method: &Method, rest: &str, headers: &HeaderMap, body: &[u8]) -> Outcome {
    let fail = |status: u16, code: u32, message: &str| {
        refuse(
            status,
            json!({"code": code, "message": message, "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
                   "status": status}),
            format!("twilio: {message}"),
        )
    };
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{TWILIO_SID}:{TWILIO_TOKEN}"));
    if header(headers, "authorization") != format!("Basic {basic}") {
        return fail(401, 20003, "Authenticate");
    }
    if *method != Method::POST || rest != format!("/2010-04-01/Accounts/{TWILIO_SID}/Messages.json") {
        return fail(404, 20404, "The requested resource was not found");
    }
    if !is_form(headers) {
        return fail(400, 20001, "the body is a form (application/x-www-form-urlencoded)");
    }
    let f = form(body);
    let to = f.get("To").cloned().unwrap_or_default();
    if !(to.starts_with('+') && (9..=16).contains(&to.len()) && to[1..].bytes().all(|b| b.is_ascii_digit())) {
        return fail(400, 21211, "The 'To' number is not a valid phone number.");
    }
    if f.contains_key("From") == f.contains_key("MessagingServiceSid") {
        return fail(400, 21603, "A 'From' or 'MessagingServiceSid' parameter is required");
    }
    let text = f.get("Body").cloned().unwrap_or_default();
    if text.is_empty() || text.chars().count() > 1600 {
        return fail(400, 21617, "The concatenated message body exceeds the 1600 character limit");
    }
    if let Some(cb) = f.get("StatusCallback")
        && !(cb.starts_with("http://") || cb.starts_with("https://"))
    {
        return fail(400, 21609, "Invalid StatusCallback URL");
    }
    if let Some(k) =
        f.keys().find(|k| !["To", "From", "MessagingServiceSid", "Body", "StatusCallback"].contains(&k.as_str()))
    {
        return fail(400, 20001, &format!("unknown parameter {k}"));
    }
    let sid = format!("SM{}", next_id(s, 32, true));
    s.sms.push(SmsSent { provider: "twilio", to: to.clone(), body: text, id: sid.clone() });
    Ok((StatusCode::CREATED, json!({"sid": sid, "status": "queued", "to": to, "account_sid": TWILIO_SID})))
}

/// eSMS's SendMultipleMessage_V4_post_json: the keys, the brandname, a phone, `SmsType` 2 or 8, `RequestId`
/// refused twice (124). Every answer is HTTP 200 with `CodeResult`.
pub(super) fn esms(s: &mut State, method: &Method, rest: &str, headers: &HeaderMap, body: &[u8]) -> Outcome {
    let code =
        |code: &str, why: &str| refuse(200, json!({"CodeResult": code, "ErrorMessage": why}), format!("esms: {why}"));
    if *method != Method::POST || rest != "/MainService.svc/json/SendMultipleMessage_V4_post_json/" {
        return refuse(404, json!("Endpoint not found."), "esms: path");
    }
    let Ok(v) = serde_json::from_slice::<Value>(body) else { return code("99", "the body is not JSON") };
    if !is_json(headers) {
        return code("99", "Content-Type: application/json");
    }
    if v["ApiKey"] != ESMS_API_KEY || v["SecretKey"] != ESMS_SECRET_KEY {
        return code("101", "wrong ApiKey or SecretKey");
    }
    if v["Brandname"] != ESMS_BRANDNAME {
        return code("104", "brandname not registered");
    }
    if !(v["SmsType"] == "2" || v["SmsType"] == "8") {
        return code("300", "SmsType is missing or not for one number");
    }
    let phone = v["Phone"].as_str().unwrap_or_default();
    let national = phone.strip_prefix('0').map(|n| n.len() == 9).unwrap_or(false);
    let international = phone.starts_with("84") && phone.len() == 11;
    if !(national || international) || !phone.bytes().all(|b| b.is_ascii_digit()) {
        return code("99", "Phone is not a Vietnamese mobile number");
    }
    let text = v["Content"].as_str().unwrap_or_default();
    let unicode = matches!(&v["IsUnicode"], Value::Number(n) if n.as_u64() == Some(1)) || v["IsUnicode"] == "1";
    let has_marks = !text.is_ascii();
    if text.is_empty() || (has_marks && !unicode) {
        return code("99", "Content is empty, or has tone marks with IsUnicode 0");
    }
    let request_id = v["RequestId"].as_str().unwrap_or_default().to_owned();
    if !request_id.is_empty() && !s.esms_requests.insert(request_id) {
        return code("124", "duplicate RequestId");
    }
    let id = format!("{}-esms", next_id(s, 12, true));
    s.sms.push(SmsSent { provider: "esms", to: phone.to_owned(), body: text.to_owned(), id: id.clone() });
    Ok((StatusCode::OK, json!({"CodeResult": "100", "CountRegenerate": 0, "SMSID": id})))
}

/// Alibaba Cloud's SendSms, called the RPC way: every common parameter, a signature over them, a nonce never
/// seen before, the registered signature and template.
pub(super) fn alibaba(s: &mut State, method: &Method, headers: &HeaderMap, body: &[u8]) -> Outcome {
    let fail = |status: u16, code: &str, message: &str| {
        refuse(status, json!({"Code": code, "Message": message, "RequestId": "0000"}), format!("alibaba: {code}"))
    };
    if *method != Method::POST || !is_form(headers) {
        return fail(400, "MissingParameter", "POST a form");
    }
    let f = form(body);
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or("");
    for (k, want) in [
        ("Action", "SendSms"),
        ("Version", "2017-05-25"),
        ("Format", "JSON"),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
    ] {
        if get(k) != want {
            return fail(400, "MissingParameter", &format!("{k} must be {want}"));
        }
    }
    if get("AccessKeyId") != ALIBABA_KEY_ID {
        return fail(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.");
    }
    let ts = get("Timestamp");
    if ts.len() != 20 || !ts.ends_with('Z') || ts.as_bytes()[10] != b'T' {
        return fail(400, "InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted.");
    }
    let nonce = get("SignatureNonce");
    if nonce.is_empty() || !s.alibaba_nonces.insert(nonce.to_owned()) {
        return fail(400, "SignatureNonceUsed", "Specified signature nonce was used already.");
    }
    let unsigned: Vec<(String, String)> =
        f.iter().filter(|(k, _)| *k != "Signature").map(|(k, v)| (k.clone(), v.clone())).collect();
    if get("Signature") != crate::sms::alibaba_signature(ALIBABA_SECRET, &unsigned) {
        return fail(400, "SignatureDoesNotMatch", "Specified signature is not matched with our calculation.");
    }
    if get("SignName") != ALIBABA_SIGN {
        return fail(200, "isv.SMS_SIGNATURE_ILLEGAL", "该账号下找不到对应签名");
    }
    if get("TemplateCode") != ALIBABA_TEMPLATE {
        return fail(200, "isv.SMS_TEMPLATE_ILLEGAL", "该账号下找不到对应模板");
    }
    let phone = get("PhoneNumbers");
    let mainland = phone.len() == 11 && phone.starts_with('1');
    let international = phone.len() >= 10 && !phone.starts_with('1') && !phone.starts_with("86");
    if !(mainland || international) || !phone.bytes().all(|b| b.is_ascii_digit()) {
        return fail(200, "isv.MOBILE_NUMBER_ILLEGAL", "非法手机号");
    }
    if let Some(p) = f.get("TemplateParam") {
        let ok = serde_json::from_str::<Value>(p)
            .ok()
            .and_then(|v| v.as_object().map(|o| o.values().all(Value::is_string)))
            .unwrap_or(false);
        if !ok {
            return fail(200, "isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值");
        }
    }
    let id = format!("{}^0", next_id(s, 15, false));
    let text = format!("{} {}", get("TemplateCode"), get("TemplateParam"));
    s.sms.push(SmsSent { provider: "alibaba", to: phone.to_owned(), body: text, id: id.clone() });
    Ok((StatusCode::OK, json!({"Code": "OK", "Message": "OK", "BizId": id, "RequestId": "0001"})))
}
