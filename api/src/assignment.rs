//! Which Host a Workload is assigned to. The operator places a Workload by labelling it
//! (`weft.dev/host`, so each host-agent can watch only its own) and records the same Host in
//! `status.host`, with `status.observedGeneration`. Tenants may write labels but not status, so
//! a label without the matching record is not an assignment: one rule for the operator (which
//! ignores and replaces such a label) and the host-agent (which never runs it).

use kube::ResourceExt;

use crate::Workload;
use crate::labels::HOST_LABEL;

/// A Workload's assignment, as far as the operator recorded it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Assignment<'a> {
    /// No Host, or a label the operator did not record.
    None,
    /// Assigned to this Host for the current spec.
    Current(&'a str),
    /// Assigned to this Host, recorded for an earlier spec: the new spec waits for the operator.
    Earlier(&'a str),
}

impl Assignment<'_> {
    /// The Host, whichever spec it was recorded for.
    pub fn host(&self) -> Option<&str> {
        match self {
            Self::None => None,
            Self::Current(host) | Self::Earlier(host) => Some(host),
        }
    }
}

impl Workload {
    /// Where the operator assigned this Workload (see the module documentation).
    pub fn assignment(&self) -> Assignment<'_> {
        let Some(label) = self.labels().get(HOST_LABEL) else {
            return Assignment::None;
        };
        let status = self.status.as_ref();
        if status.and_then(|s| s.host.as_ref()) != Some(label) {
            return Assignment::None;
        }
        if status.and_then(|s| s.observed_generation) == self.metadata.generation {
            Assignment::Current(label)
        } else {
            Assignment::Earlier(label)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::WorkloadStatus;

    fn workload(label: Option<&str>, host: Option<&str>, observed: i64) -> Workload {
        let mut workload: Workload = serde_yaml::from_str(
            "apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: w, generation: 2}
spec: {components: [{name: c, image: r/c:1}]}
",
        )
        .unwrap();
        if let Some(label) = label {
            workload
                .labels_mut()
                .insert(HOST_LABEL.into(), label.into());
        }
        workload.status = Some(WorkloadStatus {
            host: host.map(Into::into),
            observed_generation: Some(observed),
            ..Default::default()
        });
        workload
    }

    #[test]
    fn only_a_label_the_operator_recorded_is_an_assignment() {
        assert_eq!(
            workload(Some("a"), Some("a"), 2).assignment(),
            Assignment::Current("a")
        );
        assert_eq!(
            workload(Some("a"), Some("a"), 1).assignment(),
            Assignment::Earlier("a")
        );
        // A label a tenant set (no record, or another host recorded) assigns nothing.
        assert_eq!(workload(Some("a"), None, 2).assignment(), Assignment::None);
        assert_eq!(
            workload(Some("b"), Some("a"), 2).assignment(),
            Assignment::None
        );
        assert_eq!(workload(None, Some("a"), 2).assignment(), Assignment::None);
    }
}
