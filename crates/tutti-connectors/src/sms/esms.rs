//! eSMS (ViHAT), Vietnam's brandname SMS: "Gửi tin Chăm sóc khách hàng (TypeSMS 2) dạng POST"
//! (<https://developers.esms.vn/esms-api/ham-gui-tin/tin-nhan-sms-brandname/gui-tin-cham-soc-khach-hang-typesms-2-dang-post>):
//! `POST {api_base}/MainService.svc/json/SendMultipleMessage_V4_post_json/` with a JSON body of `ApiKey`,
//! `SecretKey`, `Phone`, `Content`, `Brandname`, `SmsType`, `IsUnicode` (1 when the content keeps its tone
//! marks), `Sandbox`, `RequestId` (the partner's id, which eSMS refuses twice: code 124), `campaignid` and
//! `CallbackUrl`. It answers HTTP 200 with `CodeResult`: 100 accepted (with `SMSID`), 101 wrong keys, 103 not
//! enough balance, 104 brandname not registered, 124 duplicate RequestId, 99 an unknown error (the table of
//! codes: <https://developers.esms.vn/esms-api/bang-ma-loi>).

use serde_json::{Value, json};

use super::Outgoing;
use crate::http::{Http, truncate};
use crate::{Failure, Secret};

#[allow(clippy::too_many_arguments)]
pub(super) async fn send(
    http: &Http,
    api_base: &str,
    api_key: &Secret,
    secret_key: &Secret,
    brandname: &str,
    sms_type: u8,
    callback_url: Option<&str>,
    sandbox: bool,
    message: &Outgoing<'_>,
    body: &str,
) -> Result<Value, Failure> {
    let url = format!("{api_base}/MainService.svc/json/SendMultipleMessage_V4_post_json/");
    // eSMS documents Vietnamese numbers written nationally (0912...).
    let phone = match message.to.strip_prefix("84") {
        Some(national) => format!("0{national}"),
        None => message.to.to_owned(),
    };
    let unicode = tutti_ai::sms::encoding(body) == tutti_ai::sms::Encoding::Ucs2;
    let mut request = json!({
        "ApiKey": api_key.expose(), "SecretKey": secret_key.expose(), "Phone": phone, "Content": body,
        "Brandname": brandname, "SmsType": sms_type.to_string(), "IsUnicode": u8::from(unicode),
        "Sandbox": u8::from(sandbox), "RequestId": message.request_id, "campaignid": message.flow,
    });
    if let Some(cb) = callback_url {
        request["CallbackUrl"] = json!(cb);
    }
    let answer = http.json(hyper::Method::POST, &url, &[], Some(&request)).await?;
    if !(200..300).contains(&answer.status) {
        return Err(match answer.status {
            408 | 429 | 500..=599 => Failure::Transient {
                error: format!("HTTP {} from eSMS", answer.status),
                retry_after: crate::http::retry_after(&answer.headers, message.now),
            },
            status => Failure::permanent(format!("HTTP {status} from eSMS")),
        });
    }
    let v = answer.json();
    let code = match &v["CodeResult"] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match code.as_str() {
        "100" => Ok(json!({"id": v["SMSID"], "status": "accepted"})),
        // Already accepted under this RequestId: an earlier attempt went through.
        "124" => Ok(json!({"id": Value::Null, "status": "accepted", "duplicate": true})),
        "99" | "103" => Err(Failure::transient(format!("eSMS answered {code} ({})", reason(&code)))),
        _ => Err(Failure::permanent(format!(
            "eSMS refused the message: {code} ({}){}",
            reason(&code),
            v["ErrorMessage"].as_str().map(|m| format!(": {}", truncate(m, 200))).unwrap_or_default()
        ))),
    }
}

fn reason(code: &str) -> &'static str {
    match code {
        "99" => "an unknown error",
        "101" => "wrong ApiKey or SecretKey",
        "102" => "no price list",
        "103" => "not enough balance",
        "104" => "the brandname is not registered",
        "146" => "the customer-care template is wrong",
        "177" => "the carrier is not registered",
        _ => "see eSMS's table of codes",
    }
}
