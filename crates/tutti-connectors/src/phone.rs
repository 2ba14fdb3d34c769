//! Phone numbers as vendors take them: the digits with the country code.

/// `raw` as its international digits (country code first, no `+`), or `None` when it cannot be one: a number
/// written nationally (`0912 345 678`) takes `default_cc` (such as `84`), one written with `+` or `00` keeps its
/// own. Eight to fifteen digits (E.164's bound).
pub fn international(raw: &str, default_cc: Option<&str>) -> Option<String> {
    let trimmed = raw.trim();
    if trimmed.chars().any(|c| c.is_alphabetic()) {
        return None;
    }
    let digits: String = trimmed.chars().filter(char::is_ascii_digit).collect();
    let international = if trimmed.starts_with('+') {
        digits
    } else if let Some(rest) = digits.strip_prefix("00") {
        rest.to_owned()
    } else if let Some(national) = digits.strip_prefix('0') {
        format!("{}{national}", default_cc?)
    } else {
        digits
    };
    let international = international.trim_start_matches('0').to_owned();
    (8..=15).contains(&international.len()).then_some(international)
}

/// Checks a table's `default_country_code`: a calling code's one to three digits, such as 84.
pub fn check_country_code(cc: Option<&str>) -> Result<(), String> {
    match cc {
        Some(cc) if !(1..=3).contains(&cc.len()) || !cc.bytes().all(|b| b.is_ascii_digit()) => {
            Err("`default_country_code` is the calling code's digits, such as 84".into())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_read_with_their_country_code() {
        assert_eq!(international("+84 912 345 678", None).as_deref(), Some("84912345678"));
        assert_eq!(international("0912-345-678", Some("84")).as_deref(), Some("84912345678"));
        assert_eq!(international("008613800138000", None).as_deref(), Some("8613800138000"));
        assert_eq!(international("0912", Some("84")), None, "too short");
        assert_eq!(international("0912345678", None), None, "national without a country code");
        assert_eq!(international("call me", Some("84")), None);
    }
}
