//! `host-agent dev`: `run`, then watch the manifests, every component file they name and the
//! source trees given, and apply each change as a live update. The new version takes requests
//! once it is ready, calls in flight finish on the old one, and state in the memory backends
//! stays (it lives in the host, not in the Workload). A manifest that does not load, a build
//! that fails or a component that does not start leaves the old version serving and says why.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use weft_api::error_chain;

use serde_json::json;

use crate::dev_view::Out;
use crate::image::{Credentials, ImageSource};
use crate::launcher::{Launcher, id_of};
use crate::run::{RunArgs, load_all};
use crate::sources::{self, files::FilesReader};

#[derive(Debug, clap::Args)]
pub struct DevArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Runs before each reload a change under `--watch` causes (by `sh -c`, in the current
    /// directory), e.g. `cargo build --target wasm32-wasip2 --release`; a failure keeps the
    /// old version serving. Without it, the project holding the first `--watch` path says
    /// (the nearest directory with one of these): a `Makefile` runs `make`, a `Cargo.toml`
    /// `cargo build --release --target wasm32-wasip2`, a `package.json` `npm run build`.
    #[arg(long)]
    pub build: Option<String>,
    /// Source files or directories (watched recursively) whose changes run `--build` and
    /// reload; the manifests and the component files they name are always watched.
    #[arg(long = "watch")]
    pub watch: Vec<PathBuf>,
    /// Prints one JSON object per line on stdout (`kind`: `listening`, `serving`, `watching`,
    /// `hint`, `building`, `updated`, `stopped`, `error`, `request`, `log`), for tools.
    #[arg(long)]
    pub json: bool,
}

/// Changes that arrive within this of each other are one change (an editor's save, a build).
const SETTLE: Duration = Duration::from_millis(200);

/// What the watch loop needs of the running `dev`.
pub struct Dev {
    pub build: Option<String>,
    pub sources: Vec<PathBuf>,
    pub manifests: Vec<PathBuf>,
    pub launcher: Arc<Launcher>,
    pub credentials: Credentials,
    pub reader: FilesReader,
    pub out: Out,
}

impl Dev {
    /// Watches until the process ends; returns only if watching cannot start.
    pub async fn watch(self) -> anyhow::Error {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut watcher = match notify::recommended_watcher(move |event| {
            let _ = tx.send(event);
        }) {
            Ok(watcher) => watcher,
            Err(err) => return anyhow::Error::new(err).context("watching files"),
        };
        for source in &self.sources {
            if let Err(err) = watcher.watch(source, RecursiveMode::Recursive) {
                return anyhow::Error::new(err).context(format!("watching {}", source.display()));
            }
        }
        // Editors and builds replace files by renaming, so a file is watched through its
        // directory.
        let mut watched_dirs = HashSet::new();
        let mut files = self.files();
        watch_dirs(&mut watcher, &files, &mut watched_dirs);
        let count = files.len() + self.sources.len();
        self.out.say(
            "watching",
            &format!("Watching {count} files for changes"),
            json!({"files": count}),
        );
        loop {
            let Some(first) = rx.recv().await else {
                return anyhow::anyhow!("the file watcher stopped");
            };
            let mut changed: Vec<PathBuf> = paths(first);
            tokio::time::sleep(SETTLE).await;
            while let Ok(event) = rx.try_recv() {
                changed.extend(paths(event));
            }
            let in_sources = changed
                .iter()
                .any(|p| self.sources.iter().any(|s| p.starts_with(s)));
            if !in_sources && !changed.iter().any(|p| files.contains(p)) {
                continue;
            }
            if in_sources
                && let Some(build) = &self.build
                && !self.run_build(build, &mut rx).await
            {
                continue;
            }
            self.reload().await;
            files = self.files();
            watch_dirs(&mut watcher, &files, &mut watched_dirs);
        }
    }

    /// Runs the build command; says how it went. What the build itself wrote is not another
    /// change: its events are dropped before it says so, so a change made after that is kept.
    async fn run_build(
        &self,
        build: &str,
        events: &mut tokio::sync::mpsc::UnboundedReceiver<notify::Result<notify::Event>>,
    ) -> bool {
        self.out.say(
            "building",
            &format!("Building: {build}"),
            json!({"command": build}),
        );
        let status = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(build)
            .status()
            .await;
        while events.try_recv().is_ok() {}
        match status {
            Ok(status) if status.success() => true,
            Ok(status) => {
                self.out.error(
                    &format!("the build failed ({status}); still serving the previous version"),
                    json!({"build": build}),
                );
                false
            }
            Err(err) => {
                self.out.error(
                    &format!("cannot run the build: {err}; still serving the previous version"),
                    json!({"build": build}),
                );
                false
            }
        }
    }

    /// Loads the manifests again and updates every Workload they define, stopping those they
    /// no longer do.
    async fn reload(&self) {
        let workloads = match load_all(&self.manifests) {
            Ok(workloads) => workloads,
            Err(err) => {
                self.out.error(
                    &format!("{err:#}; still serving the previous version"),
                    json!({}),
                );
                return;
            }
        };
        let wanted: HashSet<String> = workloads.iter().map(|(_, w)| id_of(w)).collect();
        for id in self.launcher.ids().await {
            if !wanted.contains(&id) {
                self.launcher.stop(&id).await;
                self.out.say(
                    "stopped",
                    &format!("Stopped {id}: no manifest defines it any more"),
                    json!({"workload": id}),
                );
            }
        }
        for (path, workload) in workloads {
            let id = id_of(&workload);
            let workload = match sources::resolve(Arc::new(workload), &self.reader).await {
                Ok(resolved) => resolved.workload,
                Err(err) => {
                    self.not_updated(&id, &error_chain(&err));
                    continue;
                }
            };
            let base = path.parent().map(PathBuf::from).unwrap_or_default();
            match self
                .launcher
                .launch(&workload, Some(base), &self.credentials)
                .await
            {
                Ok(_) => self
                    .out
                    .say("updated", &format!("Updated {id}"), json!({"workload": id})),
                Err(err) => self.not_updated(&id, &error_chain(&err)),
            }
        }
    }

    fn not_updated(&self, id: &str, reason: &str) {
        self.out.error(
            &format!("{id}: {reason}; still serving the previous version"),
            json!({"workload": id, "reason": reason}),
        );
    }

    /// The manifests and the component files they name now.
    fn files(&self) -> HashSet<PathBuf> {
        let mut files: HashSet<PathBuf> = self.manifests.iter().map(|m| absolute(m)).collect();
        if let Ok(workloads) = load_all(&self.manifests) {
            for (path, workload) in workloads {
                let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
                for component in workload.spec.all_components() {
                    if let Ok(ImageSource::File(file)) =
                        ImageSource::parse(&component.image, Some(&base))
                    {
                        files.insert(absolute(&file));
                    }
                }
            }
        }
        files
    }
}

fn watch_dirs(
    watcher: &mut notify::RecommendedWatcher,
    files: &HashSet<PathBuf>,
    watched: &mut HashSet<PathBuf>,
) {
    for dir in files.iter().filter_map(|f| f.parent()) {
        if watched.insert(dir.to_path_buf())
            && let Err(err) = watcher.watch(dir, RecursiveMode::NonRecursive)
        {
            tracing::warn!(dir = %dir.display(), %err, "cannot watch");
        }
    }
}

/// The paths an event changed; reading a file (as every reload does) changes nothing.
fn paths(event: notify::Result<notify::Event>) -> Vec<PathBuf> {
    match event {
        Ok(event) if !event.kind.is_access() => event.paths,
        _ => Vec::new(),
    }
}

/// `path` made absolute (the watcher reports absolute paths), without resolving links.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The build a project's own files imply, run in its directory: the nearest directory at or
/// above `sources[0]` with a `Makefile` (`make`), a `Cargo.toml` (`cargo build` for
/// `wasm32-wasip2`, the target a Rust component crate builds for) or a `package.json` (`npm
/// run build`).
pub fn default_build(sources: &[PathBuf]) -> Option<String> {
    const BUILDS: [(&str, &str); 3] = [
        ("Makefile", "make"),
        ("Cargo.toml", "cargo build --release --target wasm32-wasip2"),
        ("package.json", "npm run build"),
    ];
    let first = sources.first()?;
    first.ancestors().find_map(|dir| {
        let (_, build) = BUILDS.iter().find(|(file, _)| dir.join(file).is_file())?;
        let dir = dir.display().to_string().replace('\'', "'\\''");
        Some(format!("cd '{dir}' && {build}"))
    })
}

#[cfg(test)]
mod tests {
    use super::default_build;

    #[test]
    fn the_nearest_project_file_names_the_build() {
        let root = tempfile::tempdir().unwrap();
        let js = root.path().join("site/js");
        let src = root.path().join("crate/src");
        std::fs::create_dir_all(&js).unwrap();
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(root.path().join("Makefile"), "").unwrap();
        std::fs::write(root.path().join("crate/Cargo.toml"), "").unwrap();
        std::fs::write(root.path().join("site/package.json"), "{}").unwrap();
        let build = |dir: &std::path::Path| default_build(&[dir.to_path_buf()]).unwrap();
        let crate_dir = root.path().join("crate").display().to_string();
        assert_eq!(
            build(&src),
            format!("cd '{crate_dir}' && cargo build --release --target wasm32-wasip2")
        );
        assert!(
            build(&js).ends_with("/site' && npm run build"),
            "{}",
            build(&js)
        );
        assert!(build(root.path()).ends_with("' && make"));
        assert_eq!(default_build(&[]), None);
    }

    #[test]
    fn a_quote_in_the_path_stays_inside_the_shell_word() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("it's");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("Makefile"), "all:\n\ttouch built\n").unwrap();
        let build = default_build(std::slice::from_ref(&dir)).unwrap();
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(&build)
            .status()
            .unwrap();
        assert!(status.success(), "{build}");
        assert!(dir.join("built").exists(), "{build}");
    }
}
