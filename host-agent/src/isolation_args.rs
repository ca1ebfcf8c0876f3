//! Host flags that decide what Workloads may reach: each one widens or narrows the isolation
//! model of docs/security.md, and each is named there.

use ipnet::IpNet;
use weft_runtime::EgressRules;

#[derive(Debug, Clone, clap::Args)]
pub struct IsolationArgs {
    /// Refuse outgoing connections to this network (CIDR), even where a Workload's
    /// allowedHosts name it. Repeatable.
    #[arg(long = "egress-deny", value_name = "CIDR")]
    pub egress_deny: Vec<IpNet>,
    /// Allow outgoing connections to this network (CIDR) although the defaults refuse it
    /// (loopback, link-local, this host's own addresses). Repeatable.
    #[arg(long = "egress-allow", value_name = "CIDR")]
    pub egress_allow: Vec<IpNet>,
}

impl IsolationArgs {
    pub fn egress(&self) -> EgressRules {
        EgressRules::with_own_addresses(self.egress_deny.clone(), self.egress_allow.clone())
    }
}
