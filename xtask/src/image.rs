//! Container images without Docker: a minimal root filesystem for one of Weft's binaries (the
//! binary, the shared libraries `ldd` names, CA certificates, a passwd entry for uid 65532, no
//! shell), written as a directory (what the Dockerfiles copy into `FROM scratch`) or as a
//! one-layer OCI image layout (what `scripts/build-images.sh` pushes with oras).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::json;
use sha2::{Digest, Sha256};

/// The user the images run as (the chart's `runAsUser`).
const UID: u32 = 65532;

/// Every file of the root filesystem: its path in the image, its bytes and mode.
fn files(binary: &Path) -> Result<BTreeMap<PathBuf, (Vec<u8>, u32)>> {
    let name = binary
        .file_name()
        .context("the binary has no file name")?
        .to_string_lossy()
        .to_string();
    let mut files = BTreeMap::new();
    let read = |p: &Path| fs::read(p).with_context(|| format!("reading {}", p.display()));
    files.insert(
        PathBuf::from("usr/local/bin").join(&name),
        (read(binary)?, 0o755),
    );
    for library in libraries(binary)? {
        let bytes = read(&library)?;
        files.insert(library.strip_prefix("/")?.to_path_buf(), (bytes, 0o755));
    }
    files.insert(
        "etc/ssl/certs/ca-certificates.crt".into(),
        (
            read(Path::new("/etc/ssl/certs/ca-certificates.crt"))?,
            0o644,
        ),
    );
    files.insert(
        "etc/passwd".into(),
        (
            format!("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:{UID}:{UID}:nonroot:/home/nonroot:/sbin/nologin\n")
                .into_bytes(),
            0o644,
        ),
    );
    files.insert(
        "etc/group".into(),
        (format!("root:x:0:\nnonroot:x:{UID}:\n").into_bytes(), 0o644),
    );
    Ok(files)
}

/// The shared libraries the binary loads, and the loader, as `ldd` lists them.
fn libraries(binary: &Path) -> Result<Vec<PathBuf>> {
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .context("running ldd")?;
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    if said.contains("not a dynamic executable") {
        return Ok(Vec::new()); // static: nothing to add
    }
    if !out.status.success() {
        bail!("ldd {}: {said}", binary.display());
    }
    Ok(String::from_utf8(out.stdout)?
        .lines()
        .filter_map(|line| {
            // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or "/lib64/ld-linux-x86-64.so.2 (0x…)"
            let path = match line.split_once("=>") {
                Some((_, rest)) => rest.trim(),
                None => line.trim(),
            };
            let path = path.split_whitespace().next()?;
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect())
}

/// Writes the root filesystem as a directory (for `COPY --from=build /rootfs /`).
pub fn rootfs(binary: &Path, out: &Path) -> Result<()> {
    for (path, (bytes, mode)) in files(binary)? {
        let target = out.join(&path);
        fs::create_dir_all(target.parent().expect("a parent"))?;
        fs::write(&target, bytes)?;
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&target, fs::Permissions::from_mode(mode))?;
    }
    for dir in ["tmp", "home/nonroot"] {
        fs::create_dir_all(out.join(dir))?;
    }
    Ok(())
}

/// The root filesystem as one uncompressed tar layer, reproducibly (times and owners fixed).
fn layer(binary: &Path) -> Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut dirs = std::collections::BTreeSet::new();
    let files = files(binary)?;
    for path in files.keys() {
        for ancestor in path.ancestors().skip(1) {
            if !ancestor.as_os_str().is_empty() {
                dirs.insert(ancestor.to_path_buf());
            }
        }
    }
    dirs.insert("tmp".into());
    dirs.insert("home/nonroot".into());
    for dir in &dirs {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(if dir == Path::new("tmp") {
            0o1777
        } else {
            0o755
        });
        let owner = if dir == Path::new("home/nonroot") {
            UID
        } else {
            0
        };
        header.set_uid(owner.into());
        header.set_gid(owner.into());
        header.set_mtime(0);
        header.set_size(0);
        tar.append_data(&mut header, dir, std::io::empty())?;
    }
    for (path, (bytes, mode)) in &files {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(*mode);
        header.set_mtime(0);
        header.set_size(bytes.len() as u64);
        tar.append_data(&mut header, path, bytes.as_slice())?;
    }
    Ok(tar.into_inner()?)
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// Writes an OCI image layout at `out` holding the image of `binary`, tagged `tag`.
pub fn oci_image(binary: &Path, tag: &str, out: &Path) -> Result<()> {
    let name = binary
        .file_name()
        .context("the binary has no file name")?
        .to_string_lossy()
        .to_string();
    let blobs = out.join("blobs/sha256");
    fs::create_dir_all(&blobs)?;
    let write_blob = |bytes: &[u8]| -> Result<String> {
        let digest = sha256(bytes);
        fs::write(blobs.join(&digest["sha256:".len()..]), bytes)?;
        Ok(digest)
    };
    let layer = layer(binary)?;
    let layer_digest = write_blob(&layer)?;
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "User": format!("{UID}:{UID}"),
            "Entrypoint": [format!("/usr/local/bin/{name}")],
            "Env": ["PATH=/usr/local/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"],
            "WorkingDir": "/",
        },
        "rootfs": { "type": "layers", "diff_ids": [layer_digest] },
    }))?;
    let config_digest = write_blob(&config)?;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer_digest,
            "size": layer.len(),
        }],
    }))?;
    let manifest_digest = write_blob(&manifest)?;
    fs::write(out.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)?;
    fs::write(
        out.join("index.json"),
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest,
                "size": manifest.len(),
                "annotations": { "org.opencontainers.image.ref.name": tag },
            }],
        }))?,
    )?;
    println!("{manifest_digest}");
    Ok(())
}
