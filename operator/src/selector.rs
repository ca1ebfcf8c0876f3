//! Kubernetes label selectors over a Host's labels, as `spec.hostSelector` uses them.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// Whether `labels` match a Kubernetes label selector (`matchLabels` and `matchExpressions` with
/// `In`, `NotIn`, `Exists`, `DoesNotExist`). An unknown operator matches nothing, as the API
/// server would have rejected it anyway.
pub fn matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let labels_match = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(key, value)| labels.get(key) == Some(value));
    let expressions_match = selector.match_expressions.iter().flatten().all(|expr| {
        let value = labels.get(&expr.key);
        let values = expr.values.as_deref().unwrap_or_default();
        match expr.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    });
    labels_match && expressions_match
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn expression(key: &str, operator: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: operator.into(),
            values: Some(values.iter().map(|v| v.to_string()).collect()),
        }
    }

    #[test]
    fn match_labels_and_expressions() {
        let host = labels(&[("zone", "a"), ("gpu", "yes")]);
        let select =
            |match_labels: &[(&str, &str)], exprs: Vec<LabelSelectorRequirement>| LabelSelector {
                match_labels: Some(labels(match_labels)),
                match_expressions: Some(exprs),
            };
        assert!(matches(&LabelSelector::default(), &host));
        assert!(matches(&select(&[("zone", "a")], vec![]), &host));
        assert!(!matches(&select(&[("zone", "b")], vec![]), &host));
        assert!(!matches(&select(&[("rack", "1")], vec![]), &host));

        let one = |e| matches(&select(&[], vec![e]), &host);
        assert!(one(expression("zone", "In", &["a", "b"])));
        assert!(!one(expression("zone", "In", &["b"])));
        assert!(!one(expression("rack", "In", &["1"])));
        assert!(one(expression("zone", "NotIn", &["b"])));
        assert!(!one(expression("zone", "NotIn", &["a"])));
        assert!(
            one(expression("rack", "NotIn", &["1"])),
            "absent label is not in any set"
        );
        assert!(one(expression("gpu", "Exists", &[])));
        assert!(!one(expression("rack", "Exists", &[])));
        assert!(one(expression("rack", "DoesNotExist", &[])));
        assert!(!one(expression("gpu", "DoesNotExist", &[])));
        assert!(
            !one(expression("gpu", "Gt", &["1"])),
            "unknown operators match nothing"
        );

        // Both parts must hold.
        assert!(!matches(
            &select(
                &[("zone", "a")],
                vec![expression("gpu", "DoesNotExist", &[])]
            ),
            &host
        ));
    }
}
