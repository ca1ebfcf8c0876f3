//! `operator crd`: the CustomResourceDefinitions of Weft's API, as YAML.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use weft_api::{Host, Workload, WorkloadDeployment};

/// Arguments of `operator crd`.
#[derive(Debug, clap::Args)]
pub struct CrdArgs {
    /// Write one file per CRD, named `<plural>.<group>.yaml`, into this directory instead of
    /// printing them all to stdout.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

/// Every CRD Weft defines, in a stable order.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![Workload::crd(), Host::crd(), WorkloadDeployment::crd()]
}

/// The file name a CRD is written to: `<plural>.<group>.yaml`, the CRD's own name.
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}.{}.yaml", crd.spec.names.plural, crd.spec.group)
}

/// One CRD as a YAML document.
pub fn to_yaml(crd: &CustomResourceDefinition) -> anyhow::Result<String> {
    serde_yaml::to_string(crd).context("serializing a CRD to YAML")
}

/// Runs `operator crd`.
pub fn run(args: &CrdArgs) -> anyhow::Result<()> {
    match &args.out_dir {
        Some(dir) => write_files(dir),
        None => print_all(&mut std::io::stdout().lock()),
    }
}

/// Prints every CRD as YAML documents separated by `---`.
pub fn print_all(out: &mut impl Write) -> anyhow::Result<()> {
    for (i, crd) in crds().iter().enumerate() {
        if i > 0 {
            writeln!(out, "---")?;
        }
        out.write_all(to_yaml(crd)?.as_bytes())?;
    }
    Ok(())
}

/// Writes each CRD to `dir/<plural>.<group>.yaml`.
pub fn write_files(dir: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for crd in crds() {
        let path = dir.join(file_name(&crd));
        fs::write(&path, to_yaml(&crd)?).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
