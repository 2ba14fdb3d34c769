//! A customer's turn cut into sentences, each read as a question, an objection or neither, in Vietnamese,
//! Chinese and English. An objection is a worry or a reason not to buy ("too expensive", "lo bảo mật", "太贵了"),
//! asked as a question or not; a question asks for something; the rest (greetings, thanks, yes, small talk) is
//! chatter and is never a topic.

/// What a sentence of the customer's does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Objection,
    Question,
    Other,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Objection => "objection",
            Kind::Question => "question",
            Kind::Other => "other",
        }
    }
}

/// Words of worry or refusal. Latin cues match whole words of the lower-cased text (Vietnamese also without its
/// marks); Chinese cues match anywhere.
const OBJECTION_CUES: &[&str] = &[
    // English
    "worried",
    "worry",
    "worries",
    "concern",
    "concerned",
    "concerns",
    "expensive",
    "pricey",
    "afford",
    "costly",
    "overpriced",
    "too much",
    "not sure",
    "unsure",
    "afraid",
    "hesitant",
    "doubt",
    "risky",
    "risk",
    "complicated",
    "difficult",
    "don't need",
    "do not need",
    "already have",
    "already use",
    "not interested",
    "no budget",
    "out of budget",
    "over budget",
    "cheaper",
    "competitor",
    "think about it",
    "think it over",
    "check with",
    "talk to my",
    "not convinced",
    "problem is",
    "the issue is",
    "too long",
    "too slow",
    "scared",
    "nervous",
    "skeptical",
    "sceptical",
    "can't justify",
    "hard to",
    "too high",
    "too pricey",
    // Vietnamese (with marks; matched without too)
    "lo",
    "lo ngại",
    "ngại",
    "sợ",
    "đắt",
    "mắc",
    "chưa chắc",
    "không chắc",
    "băn khoăn",
    "phân vân",
    "không cần",
    "đã có",
    "đang dùng",
    "phức tạp",
    "khó",
    "rủi ro",
    "bên khác",
    "chỗ khác",
    "suy nghĩ thêm",
    "cân nhắc",
    "hỏi ý kiến",
    "bàn với",
    "chưa có ngân sách",
    "vượt ngân sách",
    "không tin",
    "e là",
    "e rằng",
    "hơi cao",
    "cao quá",
    "đắt quá",
    "mắc quá",
    "giá cao",
    "lâu quá",
    "chậm quá",
    "không yên tâm",
    "chưa yên tâm",
    // Chinese
    "担心",
    "担忧",
    "顾虑",
    "太贵",
    "很贵",
    "有点贵",
    "贵了",
    "比较贵",
    "挺贵",
    "价格高",
    "价格太高",
    "不确定",
    "犹豫",
    "不需要",
    "已经有",
    "已经在用",
    "麻烦",
    "复杂",
    "风险",
    "再考虑",
    "考虑一下",
    "想一想",
    "不放心",
    "别家",
    "其他家",
    "预算不够",
    "没有预算",
    "超预算",
    "不相信",
    "怕",
    "太慢",
    "太久",
    "划不来",
    "不值",
    "商量",
    "超出",
];

/// Words that ask. Latin cues at the start of the sentence; Chinese anywhere; Vietnamese at the end as well.
const QUESTION_OPENERS: &[&str] = &[
    "how",
    "what",
    "when",
    "where",
    "why",
    "which",
    "who",
    "whom",
    "whose",
    "can",
    "could",
    "do",
    "does",
    "did",
    "is",
    "are",
    "will",
    "would",
    "should",
    "may",
    "have",
    "has",
    "any",
    "tell me",
    "bao nhiêu",
    "bao giờ",
    "bao lâu",
    "khi nào",
    "ở đâu",
    "tại sao",
    "vì sao",
    "làm sao",
    "làm thế nào",
    "thế nào",
    "có thể",
    "liệu",
    "cho hỏi",
    "cho em hỏi",
    "cho chị hỏi",
    "cho anh hỏi",
    "cho tôi hỏi",
    "xin hỏi",
];
const QUESTION_ENDINGS: &[&str] = &[
    "không",
    "chưa",
    "không ạ",
    "chưa ạ",
    "không em",
    "được không",
    "à",
    "hả",
    "nhỉ",
    "sao",
    "gì",
    "nào",
    "đâu",
    "bao nhiêu",
    "bao lâu",
    "bao giờ",
    "khi nào",
    "ở đâu",
    "thế nào",
    "mấy ngày",
    "vậy",
];
const QUESTION_HAN: &[&str] = &[
    "吗",
    "怎么",
    "多少",
    "什么",
    "哪",
    "是否",
    "能不能",
    "可不可以",
    "有没有",
    "会不会",
    "几",
    "如何",
    "为什么",
    "请问",
    "是不是",
    "要不要",
];

/// Pleasantries that are never a topic, even when asked ("how are you?").
const CHATTER: &[&str] = &[
    "how are you",
    "how's it going",
    "nice to meet",
    "good morning",
    "good afternoon",
    "can you hear me",
    "khỏe không",
    "nghe rõ không",
    "nghe được không",
    "alo",
    "你好吗",
    "听得到吗",
    "听得见吗",
    "喂",
];

/// Sentences of `normal` (NFC, lower case), cut at sentence punctuation and line breaks, with their ending mark.
pub fn sentences(normal: &str) -> impl Iterator<Item = &str> {
    normal
        .split_inclusive(['.', '?', '!', '。', '？', '！', '\n', ';', '；', '…'])
        .map(str::trim)
        .filter(|s| s.chars().any(char::is_alphanumeric))
}

/// Which list a cue came from.
#[derive(Clone, Copy, PartialEq)]
enum Cue {
    Chatter,
    Objection,
    Question,
}

/// Every cue in one automaton, with and without Vietnamese marks: one pass over a sentence finds them all.
struct Cues {
    matcher: aho_corasick::AhoCorasick,
    /// Per pattern: its list, and whether it must stand as whole words (Latin cues).
    meta: Vec<(Cue, bool)>,
}

fn cues() -> &'static Cues {
    static BUILT: std::sync::OnceLock<Cues> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        let mut patterns: Vec<String> = Vec::new();
        let mut meta = Vec::new();
        let lists = [(Cue::Chatter, CHATTER), (Cue::Objection, OBJECTION_CUES), (Cue::Question, QUESTION_HAN)];
        for (cue, list) in lists {
            for phrase in list.iter() {
                let latin = !phrase.chars().next().is_some_and(tutti_ai::text::is_han);
                patterns.push((*phrase).to_owned());
                meta.push((cue, latin));
                // Without marks only for cues of several words: "đắt" unmarked is "dat", as in "dat hang" (to
                // order), but "lo ngai" can only be "lo ngại".
                if latin && !phrase.is_ascii() && phrase.contains(' ') {
                    patterns.push(tutti_ai::text::fold(phrase));
                    meta.push((cue, latin));
                }
            }
        }
        let matcher = aho_corasick::AhoCorasick::builder()
            .kind(Some(aho_corasick::AhoCorasickKind::DFA))
            .build(&patterns)
            .expect("the cues are few and short");
        Cues { matcher, meta }
    })
}

/// What `sentence` (NFC, lower case) does.
pub fn kind(sentence: &str) -> Kind {
    let cues = cues();
    let (mut chatter, mut objection, mut question_han) = (false, false, false);
    for found in cues.matcher.find_overlapping_iter(sentence) {
        let (cue, latin) = cues.meta[found.pattern().as_usize()];
        if latin && !whole_word_at(sentence, found.start(), found.end()) {
            continue;
        }
        match cue {
            Cue::Chatter => chatter = true,
            Cue::Objection => objection = true,
            Cue::Question => question_han = true,
        }
    }
    if chatter {
        return Kind::Other;
    }
    if objection {
        return Kind::Objection;
    }
    let asked = sentence.ends_with(['?', '？']);
    let body = sentence.trim_end_matches(|c: char| !c.is_alphanumeric());
    let opens = QUESTION_OPENERS
        .iter()
        .any(|q| body.strip_prefix(q).is_some_and(|rest| rest.starts_with(' ') || rest.is_empty() && q.contains(' ')));
    let ends = QUESTION_ENDINGS.iter().any(|q| body.strip_suffix(q).is_some_and(|rest| rest.ends_with(' ')));
    if asked || opens || ends || question_han { Kind::Question } else { Kind::Other }
}

/// Whether `text[start..end]` stands as whole words: no letter or digit just before or after it.
pub(super) fn whole_word_at(text: &str, start: usize, end: usize) -> bool {
    let before = text[..start].chars().next_back().is_none_or(|c| !c.is_alphanumeric());
    let after = text[end..].chars().next().is_none_or(|c| !c.is_alphanumeric());
    before && after
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Kind {
        kind(&tutti_ai::text::normalize(text))
    }

    #[test]
    fn objections_questions_and_chatter_in_three_languages() {
        for (text, expected) in [
            ("I'm worried about data security.", Kind::Objection),
            ("Honestly it's too expensive for us", Kind::Objection),
            ("Why is it so expensive?", Kind::Objection),
            ("How long does delivery take?", Kind::Question),
            ("Do you ship to Da Nang", Kind::Question),
            ("Great, thanks!", Kind::Other),
            ("How are you today?", Kind::Other),
            ("Giá hơi cao quá em ạ.", Kind::Objection),
            ("Anh lo ngai bao mat du lieu", Kind::Objection),
            ("Bên em có giao hàng ra Đà Nẵng không?", Kind::Question),
            ("Phí vận chuyển bao nhiêu", Kind::Question),
            ("Dạ vâng em cảm ơn.", Kind::Other),
            ("这个太贵了", Kind::Objection),
            ("我们担心数据安全", Kind::Objection),
            ("发货要几天？", Kind::Question),
            ("可以开发票吗", Kind::Question),
            ("好的，谢谢", Kind::Other),
        ] {
            assert_eq!(read(text), expected, "{text}");
        }
    }

    #[test]
    fn sentences_are_cut_at_their_marks() {
        let cut: Vec<&str> = sentences("ok. is it safe? 太贵了。好吧\nfine…").collect();
        assert_eq!(cut, ["ok.", "is it safe?", "太贵了。", "好吧\n", "fine…"].map(str::trim));
    }
}
