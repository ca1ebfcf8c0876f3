//! Messaging subjects as a guest or a manifest writes them (NATS rules): which are valid and
//! which a subscription matches. One rule for the runtime's brokers and the fuzzers.

/// The longest subject a guest may use, before the namespace is added.
pub const MAX_LEN: usize = 255;

/// Checks a guest's subject: dot-separated non-empty tokens of visible ASCII; `*` as a whole
/// token and `>` as the last one only when `wildcards` (subscriptions).
pub fn check(subject: &str, wildcards: bool) -> Result<(), String> {
    let invalid = |why: &str| Err(format!("invalid subject {subject:?}: {why}"));
    if subject.is_empty() || subject.len() > MAX_LEN {
        return invalid("use 1 to 255 characters");
    }
    let tokens: Vec<&str> = subject.split('.').collect();
    for (i, token) in tokens.iter().enumerate() {
        if token.is_empty() {
            return invalid("empty token");
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return invalid("only visible ASCII characters, no spaces");
        }
        let wildcard = *token == "*" || (*token == ">" && i == tokens.len() - 1);
        if wildcard && !wildcards {
            return invalid("wildcards are only for subscriptions");
        }
        if !wildcard && token.contains(['*', '>']) {
            return invalid("'*' and '>' only as whole tokens ('>' last)");
        }
    }
    Ok(())
}

/// Whether broker subject `subject` matches subscription `pattern` (NATS rules).
pub fn matches(pattern: &str, subject: &str) -> bool {
    let mut subject = subject.split('.');
    for token in pattern.split('.') {
        if token == ">" {
            return subject.next().is_some();
        }
        match subject.next() {
            Some(s) if token == "*" || token == s => {}
            _ => return false,
        }
    }
    subject.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_checked() {
        for bad in [
            "",
            "a..b",
            ".a",
            "a.",
            "a b",
            "a.>",
            "a*",
            "x>.y",
            &"x".repeat(256),
        ] {
            assert!(check(bad, false).is_err(), "{bad:?}");
        }
        assert!(check("orders.>", true).is_ok());
        assert!(check(">.a", true).is_err());
    }

    #[test]
    fn wildcards_match_like_nats() {
        assert!(matches("a.*.c", "a.b.c"));
        assert!(!matches("a.*", "a.b.c"));
        assert!(matches("a.>", "a.b.c"));
        assert!(!matches("a.>", "a"));
        assert!(matches("a.b", "a.b"));
        assert!(!matches("a.b", "a.b.c"));
        // Wildcards never let a subscription out of its namespace: `>` is under the prefix.
        assert!(matches("shop.>", "shop.orders.new"));
        assert!(!matches("shop.>", "other.orders.new"));
    }
}
