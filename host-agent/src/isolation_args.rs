//! Host flags that decide what Workloads may reach and what the host promises them: each one
//! widens or narrows the isolation model of docs/security.md, and each is named there.

use std::path::PathBuf;

use ipnet::IpNet;
use weft_runtime::{EgressRules, EngineBuilder};

#[derive(Debug, Clone, clap::Args)]
pub struct IsolationArgs {
    /// Refuse outgoing connections to this network (CIDR, or one address), even where a
    /// Workload's allowedHosts name it. Repeatable.
    #[arg(long = "egress-deny", value_name = "CIDR", value_parser = parse_network)]
    pub egress_deny: Vec<IpNet>,
    /// Allow outgoing connections to this network (CIDR, or one address) although the
    /// defaults refuse it (loopback, link-local, this host's own addresses). Repeatable.
    #[arg(long = "egress-allow", value_name = "CIDR", value_parser = parse_network)]
    pub egress_allow: Vec<IpNet>,
    /// Allow hostPath volumes under this directory. Repeatable. In a cluster none is allowed
    /// unless listed; `host-agent run` allows any (the manifest is your own).
    #[arg(long = "allow-host-path", value_name = "PREFIX")]
    pub allow_host_path: Vec<PathBuf>,
    /// Memory the host promises its Workloads in all (`8Gi`); each component reserves
    /// limits.memory × maxConcurrency of it [default: 80% of the cgroup's memory limit, else
    /// of the machine's memory].
    #[arg(long, value_parser = parse_quantity)]
    pub memory_budget: Option<u64>,
    /// The most memory one instance may have (`1Gi`); the pooling allocator reserves address
    /// space per memory by it.
    #[arg(long, value_parser = parse_quantity, default_value = "1Gi")]
    pub max_instance_memory: u64,
    /// Component instances alive at once on this host (the pool's slots); Workloads reserve
    /// maxConcurrency of them each.
    #[arg(long, default_value_t = EngineBuilder::DEFAULT_MAX_INSTANCES)]
    pub max_instances: u32,
    /// The longest limits.timeout a component may ask for; a Workload asking more is refused
    /// (invocations that never end would outlive their Workload's budget).
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub max_timeout: std::time::Duration,
    /// HTTP connections open at once; past it new ones are answered 503 with Retry-After.
    #[arg(long, default_value_t = 10_000)]
    pub max_connections: usize,
    /// Time an HTTP client has to send a request head (slowloris protection).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_timeout: std::time::Duration,
    /// Longest pause an HTTP client may take while sending a request body.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub body_idle_timeout: std::time::Duration,
    /// Where Workloads' emptyDirs live [default: `host-agent run`: a temporary directory;
    /// `agent`: $XDG_DATA_HOME/weft/hosts/<host name>, else ~/.local/share/weft/hosts/<host
    /// name>]. Whatever is left there from an earlier run is removed at start.
    #[arg(long, env = "WEFT_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

pub fn parse_quantity(s: &str) -> Result<u64, String> {
    weft_api::parse_memory(s).map_err(|e| e.to_string())
}

impl IsolationArgs {
    pub fn server_limits(&self) -> weft_runtime::http_server::ServerLimits {
        weft_runtime::http_server::ServerLimits {
            max_connections: self.max_connections,
            header_timeout: self.header_timeout,
            body_idle_timeout: self.body_idle_timeout,
        }
    }

    pub fn egress(&self) -> EgressRules {
        EgressRules::with_own_addresses(self.egress_deny.clone(), self.egress_allow.clone())
    }

    /// The hostPath prefixes: as listed, or any at all for a local run that lists none.
    pub fn host_path_prefixes(&self, local: bool) -> Option<Vec<PathBuf>> {
        if local && self.allow_host_path.is_empty() {
            None
        } else {
            Some(self.allow_host_path.clone())
        }
    }

    /// Where a filesystem backend keeps its state (`what`: `keyvalue`, `blobstore`):
    /// `<data dir>/<what>`, or for a local run without `--data-dir` `$XDG_DATA_HOME/weft/<what>`,
    /// so state outlives runs.
    pub fn state_dir(&self, host_name: Option<&str>, what: &str) -> anyhow::Result<PathBuf> {
        if let Some(dir) = self.data_dir(host_name)? {
            return Ok(dir.join(what));
        }
        user_data()
            .map(|d| d.join("weft").join(what))
            .ok_or_else(|| anyhow::anyhow!("no data directory: set --data-dir"))
    }

    /// The data directory: as given, a host's own one in a cluster, or `None` for a temporary
    /// one (a local run). Each host has its own, since a host empties it at start.
    pub fn data_dir(&self, host_name: Option<&str>) -> anyhow::Result<Option<PathBuf>> {
        if let Some(dir) = &self.data_dir {
            return Ok(Some(dir.clone()));
        }
        let Some(host) = host_name else {
            return Ok(None);
        };
        user_data()
            .map(|d| Some(d.join("weft/hosts").join(host)))
            .ok_or_else(|| anyhow::anyhow!("no data directory: set --data-dir"))
    }
}

/// `$XDG_DATA_HOME`, else `~/.local/share`.
fn user_data() -> Option<PathBuf> {
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
}

/// A CIDR, or one address as its own network (the chart passes the node's `$(HOST_IP)`).
pub fn parse_network(text: &str) -> Result<IpNet, String> {
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{text:?} is neither a CIDR (10.0.0.0/8) nor an address"))
}
