//! Why the scheduler refused a Host, in the words the `Scheduled=False` message uses.

use std::fmt;

/// Why a Host was refused; displayed after the Host's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// With the Ready condition's reason, if any.
    NotReady(Option<String>),
    LeaseExpired,
    NoLease,
    Unschedulable,
    Full {
        capacity: u32,
    },
    /// The memory the Workload reserves is more than the Host has left (bytes).
    InsufficientMemory {
        requested: u64,
        free: u64,
    },
    /// The instance slots the Workload reserves are more than the Host has left.
    InsufficientInstances {
        requested: u64,
        free: u64,
    },
    SelectorMismatch,
    MissingInterfaces(Vec<String>),
    /// A `hostInterfaces` entry asks for a backend (`config.backend`) the Host does not offer.
    MissingBackend {
        package: String,
        backend: String,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotReady(None) => f.write_str("is not ready"),
            Self::NotReady(Some(reason)) => write!(f, "is not ready ({reason})"),
            Self::LeaseExpired => f.write_str("has an expired lease"),
            Self::NoLease => f.write_str("has no lease"),
            Self::Unschedulable => f.write_str("is unschedulable"),
            Self::Full { capacity } => write!(f, "is full ({capacity} workloads)"),
            Self::InsufficientMemory { requested, free } => write!(
                f,
                "has {}Mi of memory left, the Workload reserves {}Mi",
                free >> 20,
                requested.div_ceil(1 << 20)
            ),
            Self::InsufficientInstances { requested, free } => write!(
                f,
                "has {free} instance slots left, the Workload reserves {requested}"
            ),
            Self::SelectorMismatch => f.write_str("does not match the host selector"),
            Self::MissingInterfaces(missing) => {
                write!(f, "does not serve {}", missing.join(", "))
            }
            Self::MissingBackend { package, backend } => {
                write!(f, "does not offer backend {backend} for {package}")
            }
        }
    }
}
