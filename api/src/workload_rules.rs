//! CEL rules the API server checks on a Workload's spec (`x-kubernetes-validations` on `spec`),
//! for the invariants a schema alone cannot express. Each names the offending field.
//!
//! Field names are the camelCase JSON names; `namespace` and `package` are CEL reserved words,
//! which Kubernetes CEL spells `__namespace__` and `__package__`. Optional lists are left out when empty, hence the
//! `has()` guards. The lists the rules iterate have `maxItems` and the strings they compare have
//! `maxLength`, which keeps the API server's cost estimate within its budget (at most 32
//! components × 16 mounts × 16 volumes). Messages are fixed text plus the field path: a
//! `messageExpression` that lists the offending names (filter, map, join over those lists) is
//! estimated at over 100× the budget, and kube-apiserver refuses the CRD.

use kube::core::{Message, Reason, Rule};

/// A mount whose volume is not declared, as a CEL predicate over `m` (a volumeMount).
const UNDECLARED: &str = "(!has(self.volumes) || !self.volumes.exists(v, v.name == m.name))";

/// Every `components[].volumeMounts[].name` names a volume in `spec.volumes`.
pub fn component_mounts_name_volumes() -> Rule {
    Rule::new(format!(
        "self.components.all(c, !has(c.volumeMounts) || !c.volumeMounts.exists(m, {UNDECLARED}))"
    ))
    .message(Message::Message(
        "a component's volumeMounts must name volumes declared in spec.volumes".into(),
    ))
    .field_path(".components")
    .reason(Reason::FieldValueInvalid)
}

/// Every `service.volumeMounts[].name` names a volume in `spec.volumes`.
pub fn service_mounts_name_volumes() -> Rule {
    Rule::new(format!(
        "!has(self.service) || !has(self.service.volumeMounts) || \
         !self.service.volumeMounts.exists(m, {UNDECLARED})"
    ))
    .message(Message::Message(
        "the service's volumeMounts must name volumes declared in spec.volumes".into(),
    ))
    .field_path(".service.volumeMounts")
    .reason(Reason::FieldValueInvalid)
}

/// `service.name` differs from every `components[].name`.
pub fn service_name_is_unique() -> Rule {
    Rule::new("!has(self.service) || !self.components.exists(c, c.name == self.service.name)")
        .message(Message::Message(
            "the service's name is already the name of a component; names must be unique \
             within the Workload"
                .into(),
        ))
        .field_path(".service.name")
        .reason(Reason::FieldValueDuplicate)
}

/// The service runs once, so it has no warm pool.
pub fn service_has_no_pool() -> Rule {
    Rule::new("!has(self.service) || !has(self.service.pool)")
        .message(Message::Message(
            "the service runs once and is restarted, never pooled; pool is for components".into(),
        ))
        .field_path(".service.pool")
        .reason(Reason::FieldValueForbidden)
}

/// A component's `pool.size` is at most its `limits.maxConcurrency`: warm instances live within
/// the memory the component reserves (`limits.memory × maxConcurrency`).
pub fn pool_within_concurrency() -> Rule {
    let default = crate::limit_defaults::MAX_CONCURRENCY;
    Rule::new(format!(
        "!has(self.pool) || self.pool.size <= \
         (has(self.limits) && has(self.limits.maxConcurrency) ? self.limits.maxConcurrency : {default})"
    ))
    .message(Message::Message(format!(
        "pool.size must be at most limits.maxConcurrency (default {default}): warm instances \
         live within the memory the component reserves"
    )))
    .field_path(".pool.size")
    .reason(Reason::FieldValueInvalid)
}

/// No two `hostInterfaces` share namespace, package and name (a missing name counts as one
/// name): entries of one package need distinct names, and at most one may go without.
pub fn host_interfaces_are_distinct() -> Rule {
    const SAME: &str = "b.__namespace__ == a.__namespace__ && b.__package__ == a.__package__ && \
                        (has(b.name) ? b.name : '') == (has(a.name) ? a.name : '')";
    Rule::new(format!(
        "!has(self.hostInterfaces) || \
         self.hostInterfaces.all(a, self.hostInterfaces.exists_one(b, {SAME}))"
    ))
    .message(Message::Message(
        "hostInterfaces lists one namespace:package more than once with the same name (or \
         without one); give each entry of the same package a distinct name"
            .into(),
    ))
    .field_path(".hostInterfaces")
    .reason(Reason::FieldValueDuplicate)
}
