//! ConfigMaps and Secrets for `host-agent run`, from a directory laid out as the kubelet
//! projects them into a Pod: `<dir>/configmaps/<name>/<key>` and `<dir>/secrets/<name>/<key>`,
//! one file per key (`--sources-dir`). The namespace plays no part locally.

use std::path::PathBuf;

use weft_api::config_source::SourceKind;

use super::{Data, Reader, SourceError, text};

pub struct FilesReader(pub Option<PathBuf>);

#[async_trait::async_trait]
impl Reader for FilesReader {
    async fn read(
        &self,
        kind: SourceKind,
        _namespace: &str,
        name: &str,
    ) -> Result<Option<Data>, SourceError> {
        let unreadable = |reason: String| SourceError::Unreadable {
            kind,
            name: name.to_owned(),
            reason,
        };
        let sub = match kind {
            SourceKind::ConfigMap => "configmaps",
            SourceKind::Secret => "secrets",
        };
        let Some(root) = &self.0 else {
            return Err(unreadable(format!(
                "host-agent run reads {kind}s from --sources-dir (DIR/{sub}/{name}/<key>)"
            )));
        };
        // A name is one path part: the manifest is input too.
        if name.is_empty() || name.starts_with('.') || name.contains(['/', '\\']) {
            return Err(unreadable("not a valid name".into()));
        }
        let dir = root.join(sub).join(name);
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(unreadable(format!("{}: {e}", dir.display()))),
        };
        let mut data = Data::new();
        for entry in entries.flatten() {
            let Ok(key) = entry.file_name().into_string() else {
                continue;
            };
            // Only regular files (not links out of the directory), not hidden ones.
            let regular = entry.file_type().is_ok_and(|t| t.is_file());
            if key.starts_with('.') || !regular {
                continue;
            }
            let bytes =
                std::fs::read(entry.path()).map_err(|e| unreadable(format!("{key}: {e}")))?;
            data.insert(key.clone(), text(kind, name, &key, bytes)?);
        }
        Ok(Some(data))
    }
}
