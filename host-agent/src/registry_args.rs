//! Command-line options shared by every command that talks to registries or the image store.

use std::path::PathBuf;

use ipnet::IpNet;
use weft_runtime::EgressRules;

use crate::image::{self, Credentials, RegistryProxy, RegistryRules};
use crate::isolation_args::parse_network;
use crate::run::BadInput;

#[derive(Debug, clap::Args)]
pub struct RegistryArgs {
    /// Registry credentials, in Docker's config format [default: ~/.docker/config.json].
    #[arg(long, env = "WEFT_REGISTRY_CONFIG")]
    pub registry_config: Option<PathBuf>,
    /// A registry (`host:port`) reached over plain HTTP. Loopback registries always are.
    #[arg(
        long = "insecure-registry",
        env = "WEFT_INSECURE_REGISTRIES",
        value_delimiter = ','
    )]
    pub insecure_registries: Vec<String>,
    /// Allow pulls from registries in this network (CIDR, or one address). Refused otherwise:
    /// loopback, link-local, private networks, this host's own addresses and --egress-deny (an
    /// image reference chooses where the agent connects). `host-agent run` allows every address
    /// when none is given (the manifest is your own). Repeatable.
    #[arg(
        long = "registry-allow",
        env = "WEFT_REGISTRY_ALLOW",
        value_delimiter = ',',
        value_parser = parse_network
    )]
    pub registry_allow: Vec<IpNet>,
    /// Pulled component images are kept here [default: $XDG_CACHE_HOME/weft/images].
    #[arg(long, env = "WEFT_IMAGE_DIR")]
    pub image_dir: Option<PathBuf>,
}

impl RegistryArgs {
    /// The proxy every pull goes through, applying `egress` (the Workloads' rules) and
    /// `--registry-allow`; none for a local run that allows every registry.
    pub async fn proxy(
        &self,
        egress: EgressRules,
        local: bool,
    ) -> std::io::Result<Option<RegistryProxy>> {
        if local && self.registry_allow.is_empty() {
            return Ok(None);
        }
        let rules = RegistryRules::new(egress, self.registry_allow.clone());
        RegistryProxy::start(rules).await.map(Some)
    }

    /// The credentials in the registry config; none when the file does not exist.
    pub fn credentials(&self) -> anyhow::Result<Credentials> {
        let Some(path) = self
            .registry_config
            .clone()
            .or_else(image::default_docker_config)
        else {
            return Ok(Credentials::default());
        };
        let credentials = Credentials::from_file(&path).map_err(|e| BadInput(e.into()))?;
        tracing::debug!(registries = ?credentials, config = %path.display(), "registry credentials");
        Ok(credentials)
    }

    pub fn image_dir(&self) -> anyhow::Result<PathBuf> {
        self.image_dir
            .clone()
            .or_else(|| user_cache("images"))
            .ok_or_else(|| anyhow::anyhow!("no image directory: set --image-dir or HOME"))
    }
}

/// `$XDG_CACHE_HOME/weft/<name>`, or `~/.cache/weft/<name>`.
pub fn user_cache(name: &str) -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("weft").join(name))
}
