//! Sentiment and "this is a complaint", for Vietnamese, Chinese and English, from a lexicon: no model, no
//! download, the same answer every time. Cue phrases are matched on NFC, lower-cased text at word boundaries
//! (Chinese has its boundaries built in); a negation just before a positive cue ("not happy", "không hài
//! lòng", "不满意") counts against it.

use serde::{Deserialize, Serialize};

use crate::text::{self, Language};

/// How a text feels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Sentiment {
    /// From -1 (angry) to 1 (delighted); 0 when nothing was said either way.
    pub score: f32,
    /// A complaint: dissatisfaction about something that went wrong (a refund, a broken item, a delay).
    pub complaint: bool,
    pub negative_cues: u32,
    pub positive_cues: u32,
}

const NEGATIVE: &[&str] = &[
    // English
    "angry",
    "terrible",
    "awful",
    "broken",
    "refund",
    "worst",
    "disappointed",
    "disappointing",
    "complaint",
    "never again",
    "not working",
    "doesn't work",
    "damaged",
    "scam",
    "unacceptable",
    "frustrated",
    "rude",
    "late",
    "waste of money",
    "cancel my",
    // Vietnamese
    "tệ",
    "thất vọng",
    "hoàn tiền",
    "hỏng",
    "chậm",
    "khiếu nại",
    "bực",
    "lừa đảo",
    "không hài lòng",
    "trả hàng",
    "quá tệ",
    "giao trễ",
    "không dùng được",
    "phí tiền",
    "hủy đơn",
    // Chinese
    "差",
    "失望",
    "退款",
    "坏了",
    "太慢",
    "投诉",
    "生气",
    "骗",
    "不满意",
    "退货",
    "垃圾",
    "没用",
    "延迟",
    "取消订单",
];

const POSITIVE: &[&str] = &[
    "love",
    "great",
    "thanks",
    "thank you",
    "amazing",
    "happy",
    "excellent",
    "perfect",
    "recommend",
    "tuyệt",
    "cảm ơn",
    "hài lòng",
    "thích",
    "tốt",
    "tuyệt vời",
    "喜欢",
    "谢谢",
    "满意",
    "很好",
    "棒",
    "推荐",
];

/// What makes dissatisfaction a complaint: something went wrong and the customer wants it made right.
const COMPLAINT: &[&str] = &[
    "refund",
    "broken",
    "damaged",
    "complaint",
    "not working",
    "doesn't work",
    "late",
    "scam",
    "cancel my",
    "hoàn tiền",
    "hỏng",
    "khiếu nại",
    "giao trễ",
    "trả hàng",
    "không dùng được",
    "lừa đảo",
    "hủy đơn",
    "退款",
    "坏了",
    "投诉",
    "退货",
    "延迟",
    "骗",
    "取消订单",
];

/// Something went wrong, said plainly rather than as a complaint ("my order never arrived", "gọi ba lần vẫn
/// không ai nghe", "还没收到"): each is a negative cue and a complaint cue by itself, whatever the tone.
const PROBLEMS: &[&str] = &[
    // English
    "never arrived",
    "hasn't arrived",
    "has not arrived",
    "haven't received",
    "have not received",
    "didn't receive",
    "did not receive",
    "never received",
    "still waiting",
    "still not here",
    "where is my order",
    "where's my order",
    "no one answered",
    "nobody answered",
    "no one replied",
    "nobody replied",
    "no reply",
    "no response",
    "no answer",
    "called three times",
    "called twice",
    "called you",
    "wrong item",
    "wrong size",
    "wrong colour",
    "wrong color",
    "missing item",
    "was missing",
    "is missing",
    "charged twice",
    "double charged",
    "overcharged",
    "stopped working",
    "fell apart",
    "leaking",
    "expired",
    "out of date",
    "money back",
    "still broken",
    "not what i ordered",
    "not as described",
    "gave up",
    "dented",
    "cracked",
    "scratched",
    "defective",
    "faulty",
    "arrived damaged",
    "won't turn on",
    "won't work",
    "won't start",
    "doesn't turn on",
    "does not work",
    "didn't work",
    "not turning on",
    "smashed",
    "shattered",
    "torn",
    // Vietnamese
    "chưa nhận được",
    "vẫn chưa nhận",
    "chưa thấy hàng",
    "chưa giao",
    "chưa tới",
    "chưa đến",
    "không thấy hàng",
    "không ai nghe",
    "không ai trả lời",
    "không ai phản hồi",
    "không được phản hồi",
    "chưa được phản hồi",
    "không liên lạc được",
    "gọi mấy lần",
    "gọi ba lần",
    "gọi 3 lần",
    "gọi hai lần",
    "gọi nhiều lần",
    "đợi mãi",
    "chờ mãi",
    "đợi cả tuần",
    "chờ cả tuần",
    "giao nhầm",
    "giao sai",
    "gửi nhầm",
    "sai hàng",
    "sai màu",
    "sai size",
    "thiếu hàng",
    "bị thiếu",
    "bị trừ tiền",
    "trừ tiền hai lần",
    "hết hạn",
    "bị vỡ",
    "bị móp",
    "bị rách",
    "bị lỗi",
    "không hoạt động",
    "không lên nguồn",
    "không giống hình",
    "không đúng mô tả",
    "trả lại tiền",
    "đòi lại tiền",
    // Chinese
    "还没收到",
    "没收到",
    "一直没到",
    "还没到",
    "没有到",
    "没发货",
    "不发货",
    "没人理",
    "没人回",
    "没人接",
    "不回复",
    "不回消息",
    "联系不上",
    "打了三次",
    "打了好几次",
    "打了几次",
    "打了两次",
    "等了一个星期",
    "等了一周",
    "等了好久",
    "发错",
    "少发",
    "漏发",
    "错发",
    "扣了两次",
    "重复扣款",
    "过期",
    "破损",
    "坏的",
    "裂了",
    "划痕",
    "瑕疵",
    "次品",
    "碎了",
    "漏了",
    "用不了",
    "不能用",
    "质量问题",
    "与描述不符",
    "货不对板",
    "退钱",
];

const NEGATIONS: &[&str] = &["not ", "no ", "never ", "không ", "chẳng ", "chưa ", "不", "没"];

/// A cue of more than one word as typed without Vietnamese marks, when that differs from the cue: worked out
/// once for every cue list.
fn unmarked(cue: &str) -> Option<&'static str> {
    static UNMARKED: std::sync::OnceLock<std::collections::HashMap<&'static str, String>> = std::sync::OnceLock::new();
    UNMARKED
        .get_or_init(|| {
            [NEGATIVE, POSITIVE, COMPLAINT, PROBLEMS]
                .iter()
                .flat_map(|cues| cues.iter())
                .filter(|cue| cue.contains(' '))
                .map(|cue| (*cue, text::fold(cue)))
                .filter(|(cue, plain)| cue != plain)
                .collect()
        })
        .get(cue)
        .map(String::as_str)
}

/// Reads the sentiment of `text`.
pub fn analyse(text_in: &str) -> Sentiment {
    let lower = text::normalize(text_in);
    // Vietnamese typed without its marks ("chua nhan duoc hang") is matched against the cues' folded forms too,
    // for cues of more than one word (a folded single syllable is too often another word).
    let folded = !text::has_diacritics(&lower);
    let count = |cues: &[&str], negatable: bool| -> (u32, u32) {
        let (mut hits, mut negated) = (0, 0);
        for cue in cues {
            let spellings: &[&str] = match unmarked(cue) {
                Some(plain) if folded => &[cue, plain],
                _ => &[cue],
            };
            for spelling in spellings {
                for (at, _) in lower.match_indices(spelling) {
                    if !text::stands_alone(&lower, at, at + spelling.len()) {
                        continue;
                    }
                    let before = &lower[..at];
                    if negatable && NEGATIONS.iter().any(|n| before.ends_with(n)) {
                        negated += 1;
                    } else {
                        hits += 1;
                    }
                }
            }
        }
        (hits, negated)
    };
    let (problems, _) = count(PROBLEMS, false);
    let (neg, _) = count(NEGATIVE, false);
    let neg = neg + problems;
    let (pos, pos_negated) = count(POSITIVE, true);
    let negative = neg + pos_negated;
    // "không hài lòng" is both a negative cue and a negated positive one: count it once.
    let negative = negative.saturating_sub(pos_negated.min(neg));
    let total = negative + pos;
    let score = if total == 0 { 0.0 } else { (pos as f32 - negative as f32) / total as f32 };
    let (complaint_cues, _) = count(COMPLAINT, false);
    Sentiment {
        score,
        // Something that went wrong, said plainly, is a complaint even wrapped in thanks ("thanks, but my order
        // never arrived").
        complaint: problems > 0 || complaint_cues > 0 && score < 0.0 || negative >= 2 && score <= -0.5,
        negative_cues: negative,
        positive_cues: pos,
    }
}

/// The language and sentiment of a text together (what the personalisation context keeps).
pub fn read(text_in: &str) -> (Language, Sentiment) {
    (text::detect(text_in), analyse(text_in))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complaints_in_three_languages() {
        for t in [
            "My order arrived broken and I want a refund",
            "Đơn hàng bị hỏng, tôi muốn hoàn tiền",
            "收到的商品坏了，我要退款",
            "Giao trễ ba ngày, quá tệ",
        ] {
            let s = analyse(t);
            assert!(s.complaint && s.score < 0.0, "{t}: {s:?}");
        }
    }

    #[test]
    fn problems_said_plainly_are_complaints() {
        for t in [
            "Thanks, but my order never arrived and nobody answered when I called",
            "Đơn hàng đặt từ tuần trước vẫn chưa nhận được, gọi ba lần không ai nghe máy",
            "Don hang dat tu tuan truoc van chua nhan duoc, goi ba lan khong ai nghe",
            "上周下的单还没收到，打了三次电话都没人接",
            "Giao nhầm màu rồi shop ơi",
            "收到的货与描述不符",
        ] {
            let s = analyse(t);
            assert!(s.complaint && s.score < 0.0, "{t}: {s:?}");
        }
    }

    #[test]
    fn praise_and_plain_text_are_not_complaints() {
        for t in ["Thank you, I love it!", "Cảm ơn shop, tôi rất hài lòng", "很满意，谢谢", "Where is the store?"]
        {
            let s = analyse(t);
            assert!(!s.complaint && s.score >= 0.0, "{t}: {s:?}");
        }
    }

    #[test]
    fn negation_turns_praise_around() {
        for t in ["I am not happy with this", "Tôi không hài lòng", "我不满意"] {
            assert!(analyse(t).score < 0.0, "{t}: {:?}", analyse(t));
        }
    }

    #[test]
    fn cues_inside_words_do_not_count() {
        // "late" in "chocolate", "tốt" is whole in Vietnamese only when it stands alone.
        assert_eq!(analyse("Chocolate plated").negative_cues, 0);
    }
}
