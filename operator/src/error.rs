//! Errors of the operator's controllers and leader election, each naming what failed.

/// What went wrong while reconciling or electing a leader.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kubernetes API call failed; `what` says which call on which object.
    #[error("{what}")]
    Kube {
        what: String,
        #[source]
        source: kube::Error,
    },
    /// A cache (reflector store) never received its initial list.
    #[error("the {0} cache is not ready")]
    CacheNotReady(&'static str),
    /// An object lacks a field the API server always sets.
    #[error("{kind} has no {field}")]
    MissingField {
        kind: &'static str,
        field: &'static str,
    },
    /// A Workload's spec cannot be scheduled as written (the CRD's validation should prevent it).
    #[error("Workload {workload} has an invalid host interface")]
    InvalidHostInterface {
        workload: String,
        #[source]
        source: weft_api::WitParseError,
    },
    /// The API server did not answer a leader-election request in time.
    #[error("the API server did not answer about the leader Lease {lease} within {after:?}")]
    LeaseTimeout {
        lease: String,
        after: std::time::Duration,
    },
    /// Another replica took over the leader Lease, or it could not be renewed in time.
    #[error("lost the leader Lease {lease}: {why}")]
    LostLeadership { lease: String, why: String },
}

impl Error {
    /// Wraps a kube error with a description of the call that failed.
    pub fn kube(what: impl Into<String>) -> impl FnOnce(kube::Error) -> Self {
        let what = what.into();
        move |source| Self::Kube { what, source }
    }

    /// Whether a write lost a race: the object changed since it was read (HTTP 409). The newer
    /// version's watch event reconciles the object again.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Kube { source: kube::Error::Api(status), .. } if status.code == 409)
    }
}

pub use weft_api::error_chain as chain;
