//! The CRDs checked in under `crds/` are exactly what `operator crd` generates.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use operator::crdgen;

const REGENERATE: &str = "regenerate them with `cargo run -p operator -- crd --out-dir crds`";

fn crds_dir() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    workspace.join("crds")
}

#[test]
fn checked_in_crds_match_the_generated_ones() {
    let dir = crds_dir();
    let mut expected_files = BTreeSet::new();
    for crd in crdgen::crds() {
        let name = crdgen::file_name(&crd);
        let path = dir.join(&name);
        let generated = crdgen::to_yaml(&crd).unwrap();
        let checked_in = fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}; {REGENERATE}", path.display()));
        assert!(
            checked_in == generated,
            "{} is out of date with the API types; {REGENERATE}",
            path.display()
        );
        expected_files.insert(name);
    }

    let stale: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".yaml") && !expected_files.contains(name))
        .collect();
    assert!(
        stale.is_empty(),
        "crds/ holds files `operator crd` no longer generates: {stale:?}; delete them and {REGENERATE}"
    );
}

#[test]
fn crd_command_prints_every_crd() {
    let output = Command::new(env!("CARGO_BIN_EXE_operator"))
        .arg("crd")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let documents: Vec<String> = crdgen::crds()
        .iter()
        .map(|crd| crdgen::to_yaml(crd).unwrap())
        .collect();
    assert_eq!(stdout, documents.join("---\n"));
    assert!(stdout.contains("name: workloads.weft.dev"));
    assert!(stdout.contains("name: hosts.weft.dev"));
}

#[test]
fn crd_command_writes_one_file_per_crd() {
    let dir = std::env::temp_dir().join(format!("weft-crds-{}", std::process::id()));
    let status = Command::new(env!("CARGO_BIN_EXE_operator"))
        .args(["crd", "--out-dir"])
        .arg(&dir)
        .status()
        .unwrap();
    assert!(status.success());
    let mut written: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    assert_eq!(
        written,
        [
            "hosts.weft.dev.yaml",
            "workloaddeployments.weft.dev.yaml",
            "workloads.weft.dev.yaml"
        ]
    );
    fs::remove_dir_all(&dir).unwrap();
}
