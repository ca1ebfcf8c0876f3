//! CEL rules the API server checks on a Workload's spec (`x-kubernetes-validations` on `spec`),
//! for the invariants a schema alone cannot express. Each names the offending field.
//!
//! Field names are the camelCase JSON names; `namespace` and `package` are CEL reserved words,
//! which Kubernetes CEL spells `__namespace__` and `__package__`. Optional lists are left out when empty, hence the
//! `has()` guards. The lists the rules iterate have `maxItems` and the strings they compare have
//! `maxLength`, which keeps the API server's cost estimate far below its budget
//! (at most 32 components × 16 mounts × 16 volumes).

use kube::core::{Message, Reason, Rule};

/// A mount whose volume is not declared, as a CEL predicate over `m` (a volumeMount).
const UNDECLARED: &str = "(!has(self.volumes) || !self.volumes.exists(v, v.name == m.name))";

/// Every `components[].volumeMounts[].name` names a volume in `spec.volumes`.
pub fn component_mounts_name_volumes() -> Rule {
    Rule::new(format!(
        "self.components.all(c, !has(c.volumeMounts) || !c.volumeMounts.exists(m, {UNDECLARED}))"
    ))
    .message(Message::Expression(format!(
        "'volumeMounts must name volumes declared in spec.volumes: ' + \
         self.components.filter(c, has(c.volumeMounts) && c.volumeMounts.exists(m, {UNDECLARED}))\
         .map(c, 'component ' + c.name + ' mounts ' + \
         c.volumeMounts.filter(m, {UNDECLARED}).map(m, m.name).join(', ')).join('; ')"
    )))
    .field_path(".components")
    .reason(Reason::FieldValueInvalid)
}

/// Every `service.volumeMounts[].name` names a volume in `spec.volumes`.
pub fn service_mounts_name_volumes() -> Rule {
    Rule::new(format!(
        "!has(self.service) || !has(self.service.volumeMounts) || \
         !self.service.volumeMounts.exists(m, {UNDECLARED})"
    ))
    .message(Message::Expression(format!(
        "'volumeMounts must name volumes declared in spec.volumes: service ' + self.service.name + \
         ' mounts ' + self.service.volumeMounts.filter(m, {UNDECLARED}).map(m, m.name).join(', ')"
    )))
    .field_path(".service.volumeMounts")
    .reason(Reason::FieldValueInvalid)
}

/// `service.name` differs from every `components[].name`.
pub fn service_name_is_unique() -> Rule {
    Rule::new("!has(self.service) || !self.components.exists(c, c.name == self.service.name)")
        .message(Message::Expression(
            "'service name ' + self.service.name + ' is already the name of a component; \
             names must be unique within the Workload'"
                .into(),
        ))
        .field_path(".service.name")
        .reason(Reason::FieldValueDuplicate)
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
    .message(Message::Expression(format!(
        "'hostInterfaces lists ' + \
         self.hostInterfaces.filter(a, !self.hostInterfaces.exists_one(b, {SAME}))\
         .map(a, a.__namespace__ + ':' + a.__package__ + (has(a.name) ? ' named ' + a.name : ' without a name'))[0] + \
         ' more than once; give each entry of the same package a distinct name'"
    )))
    .field_path(".hostInterfaces")
    .reason(Reason::FieldValueDuplicate)
}
