//! Subjects as guests write them and as brokers carry them. Every subject a Workload publishes
//! or subscribes to is prefixed with its namespace (`orders.new` in namespace `shop` is
//! `shop.orders.new` on the broker), so tenants sharing a broker never see each other's
//! messages. The one exception is a reply: while a message is handled, its `reply-to` is
//! passed as is and may be published to as is.

use super::backend::BackendError;
pub use weft_api::subjects::matches;

/// The broker subject of a guest's subject in `namespace`.
pub fn scoped(namespace: &str, subject: &str, wildcards: bool) -> Result<String, BackendError> {
    weft_api::subjects::check(subject, wildcards).map_err(BackendError::Invalid)?;
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
        assert!(scoped("ns", "a..b", false).is_err());
        assert!(scoped("ns", "a.>", false).is_err());
    }
}
