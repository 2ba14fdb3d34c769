//! Money: an amount in millionths of a unit (micros, as ad platforms report cost) and an ISO 4217 currency.
//! Exact sums, no table of how many decimals each currency has, and never a sum across currencies.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An amount of one currency. In JSON: `{"amount", "currency", "micros"}` (the amount for people, the micros
/// exact); read back from `micros` and `currency`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
pub struct Money {
    pub micros: i64,
    /// Three upper-case letters (`VND`, `CNY`, `USD`).
    pub currency: String,
}

/// The largest amount taken, in units (a trillion: more than any marketing budget in any currency).
const MAX_UNITS: f64 = 1e12;

impl Money {
    pub fn new(micros: i64, currency: &str) -> Money {
        Money { micros, currency: currency.to_owned() }
    }

    /// Reads `{amount, currency}` (the amount a number or a decimal text, not negative). The error says what
    /// is wrong in words a person can act on.
    pub fn from_value(value: &Value) -> Result<Money, String> {
        let Value::Object(o) = value else {
            return Err("money is `{amount: 50000000, currency: VND}`".into());
        };
        if let Some(key) = o.keys().find(|k| *k != "amount" && *k != "currency") {
            return Err(format!("unknown key `{key}`; money has `amount` and `currency`"));
        }
        let amount = match o.get("amount") {
            Some(Value::Number(n)) => n.as_f64(),
            Some(Value::String(s)) => s.trim().replace(['_', ','], "").parse::<f64>().ok(),
            _ => None,
        }
        .ok_or("`amount` is a number, such as 50000000 or 0.05")?;
        if !(0.0..=MAX_UNITS).contains(&amount) || !amount.is_finite() {
            return Err(format!("`amount` is from 0 to {MAX_UNITS:e}"));
        }
        let currency = o.get("currency").and_then(Value::as_str).unwrap_or_default();
        if !is_currency(currency) {
            return Err(format!("`currency` is an ISO 4217 code of three letters (VND, CNY, USD), not `{currency}`"));
        }
        Ok(Money { micros: (amount * 1e6).round() as i64, currency: currency.to_owned() })
    }

    /// The amount in units, for display and JSON.
    pub fn amount(&self) -> f64 {
        self.micros as f64 / 1e6
    }

    /// `{amount, currency}`.
    pub fn to_value(&self) -> Value {
        serde_json::json!({"amount": self.amount(), "currency": self.currency})
    }
}

impl Serialize for Money {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("Money", 3)?;
        s.serialize_field("amount", &self.amount())?;
        s.serialize_field("currency", &self.currency)?;
        s.serialize_field("micros", &self.micros)?;
        s.end()
    }
}

impl std::fmt::Display for Money {
    /// `50,000,000 VND`, `0.05 USD`: thousands grouped, at most six decimals, trailing zeros dropped.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = if self.micros < 0 { "-" } else { "" };
        let abs = self.micros.unsigned_abs();
        let (units, fraction) = (abs / 1_000_000, abs % 1_000_000);
        let digits = units.to_string();
        let mut grouped = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                grouped.push(',');
            }
            grouped.push(c);
        }
        let fraction =
            if fraction == 0 { String::new() } else { format!(".{:06}", fraction).trim_end_matches('0').to_owned() };
        write!(f, "{sign}{grouped}{fraction} {}", self.currency)
    }
}

/// Three upper-case ASCII letters.
pub fn is_currency(code: &str) -> bool {
    code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn amounts_are_read_exactly_and_shown_grouped() {
        let m = Money::from_value(&json!({"amount": 50_000_000, "currency": "VND"})).unwrap();
        assert_eq!(m.micros, 50_000_000_000_000);
        assert_eq!(m.to_string(), "50,000,000 VND");
        let m = Money::from_value(&json!({"amount": "0.0075", "currency": "USD"})).unwrap();
        assert_eq!((m.micros, m.to_string()), (7_500, "0.0075 USD".to_owned()));
        assert_eq!(Money::from_value(&json!({"amount": "1_200", "currency": "CNY"})).unwrap().micros, 1_200_000_000);
        assert_eq!(Money::new(-1_500_000, "VND").to_string(), "-1.5 VND");
    }

    #[test]
    fn bad_money_is_named() {
        assert!(Money::from_value(&json!({"amount": -1, "currency": "VND"})).unwrap_err().contains("from 0"));
        assert!(Money::from_value(&json!({"amount": 1, "currency": "dong"})).unwrap_err().contains("ISO 4217"));
        assert!(Money::from_value(&json!({"amount": "lots", "currency": "VND"})).unwrap_err().contains("number"));
        assert!(Money::from_value(&json!({"amount": 1, "currency": "VND", "per": "x"})).unwrap_err().contains("per"));
        assert!(Money::from_value(&json!(5)).is_err());
    }
}
