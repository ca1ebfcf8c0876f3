//! Subjects as guests write them and as brokers carry them. Every subject a Workload publishes
//! or subscribes to is prefixed with its namespace (`orders.new` in namespace `shop` is
//! `shop.orders.new` on the broker), so tenants sharing a broker never see each other's
//! messages. The one exception is a reply: while a message is handled, its `reply-to` is
//! passed as is and may be published to as is.

use super::backend::BackendError;

/// The longest subject a guest may use, before the namespace is added.
const MAX_LEN: usize = 255;

/// Checks a guest's subject: dot-separated non-empty tokens of visible ASCII; `*` as a whole
/// token and `>` as the last one only when `wildcards` (subscriptions).
pub fn check(subject: &str, wildcards: bool) -> Result<(), BackendError> {
    let invalid = |why: &str| {
        Err(BackendError::Invalid(format!(
            "invalid subject {subject:?}: {why}"
        )))
    };
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

/// The broker subject of a guest's subject in `namespace`.
pub fn scoped(namespace: &str, subject: &str, wildcards: bool) -> Result<String, BackendError> {
    check(subject, wildcards)?;
    Ok(format!("{namespace}.{subject}"))
}

/// The guest's view of a broker subject: without the namespace prefix.
pub fn unscoped(namespace: &str, subject: &str) -> String {
    subject
        .strip_prefix(namespace)
        .and_then(|rest| rest.strip_prefix('.'))
        .unwrap_or(subject)
        .to_string()
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
    fn subjects_are_checked_and_scoped() {
        assert_eq!(
            scoped("shop", "orders.new", false).unwrap(),
            "shop.orders.new"
        );
        assert_eq!(scoped("shop", "orders.>", true).unwrap(), "shop.orders.>");
        assert_eq!(unscoped("shop", "shop.orders.new"), "orders.new");
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
            assert!(scoped("ns", bad, false).is_err(), "{bad:?}");
        }
        // Wildcards never let a subscription out of its namespace: `>` is under the prefix.
        assert!(matches("shop.>", "shop.orders.new"));
        assert!(!matches("shop.>", "other.orders.new"));
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
    }
}
