//! Reads Workload and WorkloadDeployment manifests from a file the way `kubectl apply -f` would
//! accept them, but stricter: unknown fields are errors, and every error names the file, the line
//! and the field. A file may hold several documents separated by `---` lines; empty ones are
//! skipped. A WorkloadDeployment becomes its replicas, `<name>-0` … `<name>-<replicas - 1>`, made
//! by the same rule as in a cluster ([`WorkloadDeployment::replica`]).

use std::path::{Path, PathBuf};

use crate::workload_deployment::MAX_REPLICAS;
use crate::{Workload, WorkloadDeployment};
use serde::de::DeserializeOwned;

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    // The I/O error is part of the message, not a source, so it is printed once.
    #[error("{}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
}

const API_VERSION: &str = "weft.dev/v1alpha1";

/// Loads every Workload in `path`.
pub fn load(path: &Path) -> Result<Vec<Workload>, ManifestError> {
    let text = std::fs::read_to_string(path).map_err(|error| ManifestError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    parse_all(&text).map_err(|message| ManifestError::Invalid {
        path: path.to_path_buf(),
        message,
    })
}

/// Parses every document of `text`; an error names the line in the whole text.
pub fn parse_all(text: &str) -> Result<Vec<Workload>, String> {
    let mut workloads = Vec::new();
    for (first_line, doc) in documents(text)
        .into_iter()
        .filter(|(_, doc)| !is_empty(doc))
    {
        workloads.extend(parse(&doc).map_err(|e| relocate(&e, first_line))?);
    }
    if workloads.is_empty() {
        return Err("no Workload in the file".into());
    }
    Ok(workloads)
}

/// The documents of a YAML stream (split at `---` lines), each with the line it starts on
/// (0-based) in the whole text.
fn documents(text: &str) -> Vec<(usize, String)> {
    let mut docs = vec![(0, String::new())];
    for (i, line) in text.lines().enumerate() {
        if line == "---" || line.starts_with("--- ") {
            docs.push((i + 1, String::new()));
        } else {
            let doc = &mut docs.last_mut().expect("one document at least").1;
            doc.push_str(line);
            doc.push('\n');
        }
    }
    docs
}

/// Only comments and blank lines.
fn is_empty(doc: &str) -> bool {
    doc.lines()
        .map(str::trim)
        .all(|l| l.is_empty() || l.starts_with('#'))
}

/// Shifts the `line N` an error of one document names to the line in the whole file.
fn relocate(error: &str, first_line: usize) -> String {
    if first_line == 0 {
        return error.to_string();
    }
    let Some(at) = error.find("line ") else {
        return error.to_string();
    };
    let digits: String = error[at + 5..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    match digits.parse::<usize>() {
        Ok(line) => format!(
            "{}line {}{}",
            &error[..at],
            line + first_line,
            &error[at + 5 + digits.len()..]
        ),
        Err(_) => error.to_string(),
    }
}

/// Parses one document: a Workload, or a WorkloadDeployment as its replicas. The error is a
/// message naming the line and field.
pub fn parse(text: &str) -> Result<Vec<Workload>, String> {
    let value: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
    let api_version = value.get("apiVersion").and_then(|v| v.as_str());
    let kind = value.get("kind").and_then(|v| v.as_str());
    match (api_version, kind) {
        (Some(API_VERSION), Some("Workload")) => Ok(vec![strict::<Workload>(text)?]),
        (Some(API_VERSION), Some("WorkloadDeployment")) => {
            let deployment = strict::<WorkloadDeployment>(text)?;
            // The CRD's bound, which no API server checks here: each replica is a Workload.
            if !(0..=MAX_REPLICAS).contains(&deployment.spec.replicas) {
                return Err(format!(
                    "spec.replicas: {} is not between 0 and {MAX_REPLICAS}",
                    deployment.spec.replicas
                ));
            }
            Ok(replicas(&deployment))
        }
        _ => Err(format!(
            "expected apiVersion: {API_VERSION} and kind: Workload or WorkloadDeployment, found {} and {}",
            api_version.unwrap_or("none"),
            kind.unwrap_or("none")
        )),
    }
}

/// Deserializes `text`, refusing unknown fields and a missing name.
fn strict<K: DeserializeOwned + kube::Resource>(text: &str) -> Result<K, String> {
    let deserializer = serde_yaml::Deserializer::from_str(text);
    let mut unknown = Vec::new();
    let object: K = serde_ignored::deserialize(deserializer, |path| {
        let path = path.to_string();
        // The CRD types keep no apiVersion and kind; they were checked by the caller.
        if path != "apiVersion" && path != "kind" {
            unknown.push(path);
        }
    })
    .map_err(|e| e.to_string())?;
    if let Some(field) = unknown.first() {
        let line = line_of(text, field)
            .map(|l| format!("line {l}: "))
            .unwrap_or_default();
        return Err(format!("{line}unknown field `{field}`"));
    }
    if object.meta().name.as_deref().unwrap_or("").is_empty() {
        return Err("missing field `metadata.name`".into());
    }
    Ok(object)
}

/// The replicas of a WorkloadDeployment on this one host, named `<name>-<index>`.
fn replicas(deployment: &WorkloadDeployment) -> Vec<Workload> {
    let mut deployment = deployment.clone();
    // The owner reference needs a uid; locally nothing else reads it.
    deployment.metadata.uid = Some("local".into());
    // As for a Workload without one (the replicas' claimant names it).
    deployment
        .metadata
        .namespace
        .get_or_insert_with(|| "default".into());
    let name = deployment.metadata.name.clone().unwrap_or_default();
    (0..deployment.spec.replicas)
        .filter_map(|i| {
            let mut replica = deployment.replica()?;
            replica.metadata.name = Some(format!("{name}-{i}"));
            Some(replica)
        })
        .collect()
}

/// The line where the last key of a dotted path (`spec.components.0.imagee`) is written.
fn line_of(text: &str, field: &str) -> Option<usize> {
    let key = field.rsplit('.').next()?;
    let needle = format!("{key}:");
    text.lines()
        .position(|line| {
            let line = line.trim_start().trim_start_matches("- ");
            line.starts_with(&needle)
        })
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: hello
spec:
  components:
    - name: hello
      image: build/hello-http.wasm
";

    #[test]
    fn replicas_are_bounded_as_in_a_cluster() {
        let deployment = |replicas: i64| {
            format!(
                "apiVersion: weft.dev/v1alpha1
kind: WorkloadDeployment
metadata: {{name: web}}
spec:
  replicas: {replicas}
  template:
    spec:
      components: [{{name: c, image: c.wasm}}]
"
            )
        };
        assert_eq!(parse(&deployment(3)).unwrap().len(), 3);
        // Two billion Workloads would be built before anything else was checked.
        let err = parse(&deployment(2_000_000_000)).unwrap_err();
        assert!(err.contains("not between 0 and 10000"), "{err}");
        assert!(
            parse(&deployment(-1))
                .unwrap_err()
                .contains("spec.replicas")
        );
    }

    #[test]
    fn parses_a_workload() {
        let w = parse(GOOD).unwrap().remove(0);
        assert_eq!(w.spec.components[0].image, "build/hello-http.wasm");
    }

    #[test]
    fn unknown_fields_name_line_and_path() {
        let text = GOOD.replace("      image:", "      imagee: x\n      image:");
        let err = parse(&text).unwrap_err();
        assert!(err.contains("line 8"), "{err}");
        assert!(err.contains("spec.components.0.imagee"), "{err}");
    }

    #[test]
    fn missing_fields_name_the_field_and_line() {
        let text = GOOD.replace("      image: build/hello-http.wasm\n", "");
        let err = parse(&text).unwrap_err();
        assert!(err.contains("missing field `image`"), "{err}");
        assert!(err.contains("line"), "{err}");
    }

    #[test]
    fn several_documents_and_lines_in_the_whole_file() {
        let other = GOOD.replace("name: hello\n", "name: other\n");
        let text = format!("# two\n---\n{GOOD}---\n{other}---\n");
        let names: Vec<String> = parse_all(&text)
            .unwrap()
            .into_iter()
            .map(|w| w.metadata.name.unwrap())
            .collect();
        assert_eq!(names, ["hello", "other"]);

        let broken = format!(
            "{GOOD}---\n{}",
            other.replace("image:", "imagee: x\n      image:")
        );
        let err = parse_all(&broken).unwrap_err();
        // Line 8 of the second document, which starts after line 9.
        assert!(err.contains("line 17"), "{err}");
        assert!(parse_all("---\n# nothing\n").is_err());
    }

    #[test]
    fn a_workload_deployment_becomes_its_replicas() {
        let text = "apiVersion: weft.dev/v1alpha1
kind: WorkloadDeployment
metadata:
  name: web
spec:
  replicas: 3
  template:
    spec:
      components:
        - name: hello
          image: build/hello-http.wasm
";
        let replicas = parse(text).unwrap();
        let names: Vec<&str> = replicas
            .iter()
            .map(|w| w.metadata.name.as_deref().unwrap())
            .collect();
        assert_eq!(names, ["web-0", "web-1", "web-2"]);
        assert!(
            replicas
                .iter()
                .all(|w| w.claimant() == "default/WorkloadDeployment/web")
        );
        let err =
            parse(&text.replace("  replicas: 3", "  replicas: 3\n  replicaz: 4")).unwrap_err();
        assert!(
            err.contains("line 7") && err.contains("spec.replicaz"),
            "{err}"
        );
        assert!(
            parse(&text.replace("replicas: 3", "replicas: 0"))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn invalid_yaml_names_the_line() {
        let err = parse("apiVersion: [\n").unwrap_err();
        assert!(err.contains("line"), "{err}");
    }
}
