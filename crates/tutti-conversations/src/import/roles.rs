//! Which side a speaker is on when the source does not say: the conversation's rep by name, or a speaker
//! labelled as an agent or a customer in one of the three languages.

/// Labels that name the company's side.
const REP_LABELS: &[&str] = &[
    "agent",
    "rep",
    "sales",
    "salesperson",
    "support",
    "advisor",
    "consultant",
    "staff",
    "seller",
    "nhân viên",
    "nv",
    "tư vấn viên",
    "tư vấn",
    "tvv",
    "cskh",
    "sale",
    "客服",
    "销售",
    "顾问",
    "坐席",
    "业务员",
    "店员",
    "客户经理",
];

/// Labels that name the customer.
const CUSTOMER_LABELS: &[&str] = &[
    "customer",
    "client",
    "caller",
    "buyer",
    "prospect",
    "lead",
    "visitor",
    "user",
    "khách",
    "khách hàng",
    "kh",
    "người mua",
    "客户",
    "顾客",
    "买家",
    "客人",
    "用户",
    "访客",
];

/// The role of `speaker`: the rep when it is the conversation's rep or labelled as one, the customer when
/// labelled as one, `None` when neither can be told.
pub fn role_of_speaker(speaker: &str, rep: Option<&str>) -> Option<crate::model::Role> {
    use crate::model::Role;
    let label = speaker.trim().to_lowercase();
    if label.is_empty() {
        return None;
    }
    if rep.is_some_and(|r| r.trim().to_lowercase() == label) {
        return Some(Role::Rep);
    }
    // "Agent 2", "Khách hàng (An)", "客服小王": the label may carry a number, a name in brackets or a name after it.
    let matches = |labels: &[&str]| {
        labels.iter().any(|l| {
            label == *l
                || label.strip_prefix(l).is_some_and(|rest| {
                    rest.starts_with([' ', '(', '-', '_', '#', '（', ':'])
                        || rest.chars().all(|c| c.is_ascii_digit())
                        || l.chars().all(tutti_ai::text::is_han)
                })
        })
    };
    if matches(REP_LABELS) {
        Some(Role::Rep)
    } else if matches(CUSTOMER_LABELS) {
        Some(Role::Customer)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Role;

    #[test]
    fn labels_in_three_languages() {
        for (speaker, role) in [
            ("Agent", Some(Role::Rep)),
            ("agent 2", Some(Role::Rep)),
            ("Nhân viên", Some(Role::Rep)),
            ("客服小王", Some(Role::Rep)),
            ("Khách hàng (An)", Some(Role::Customer)),
            ("客户", Some(Role::Customer)),
            ("Customer", Some(Role::Customer)),
            ("Salvador", None),
            ("Khánh", None),
        ] {
            assert_eq!(role_of_speaker(speaker, None), role, "{speaker}");
        }
        assert_eq!(role_of_speaker("Lan", Some("lan")), Some(Role::Rep));
    }
}
