//! What a node leaves behind when its harness dies before its teardown (SIGKILL, a crash, a
//! power cut): Pod containers still running under their containerd shims, the shims
//! themselves, mounts under its temporary directories, Pod network namespaces. A node records
//! its directories when it starts and forgets them when its teardown finishes; the next node
//! finds the record and cleans up after its predecessor before it starts over.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where runc keeps the state of the containers containerd's runc shim starts in the kubelet's
/// namespace (the shim's default root, whatever containerd's own state directory).
const RUNC_ROOT: &str = "/run/containerd/runc/k8s.io";

/// What one node made: its directories, and the network namespaces that existed before it.
pub struct Record {
    pub dirs: Vec<PathBuf>,
    pub netns_before: Vec<String>,
}

fn record_path() -> PathBuf {
    std::env::temp_dir().join("weft-node.record")
}

impl Record {
    /// Writes the record; the node's teardown removes it with [`forget`].
    pub fn save(&self) {
        let mut text = String::new();
        for dir in &self.dirs {
            text.push_str(&format!("dir {}\n", dir.display()));
        }
        for ns in &self.netns_before {
            text.push_str(&format!("netns {ns}\n"));
        }
        std::fs::write(record_path(), text).unwrap();
    }

    fn load() -> Option<Self> {
        let text = std::fs::read_to_string(record_path()).ok()?;
        let mut record = Self {
            dirs: Vec::new(),
            netns_before: Vec::new(),
        };
        for line in text.lines() {
            match line.split_once(' ') {
                Some(("dir", dir)) => record.dirs.push(dir.into()),
                Some(("netns", ns)) => record.netns_before.push(ns.into()),
                _ => {}
            }
        }
        Some(record)
    }
}

/// The node's teardown finished: nothing is left to clean.
pub fn forget() {
    let _ = std::fs::remove_file(record_path());
}

/// Cleans what the last node left if its teardown never finished; call it holding the node
/// lock, before anything of the new node starts. Prints what it removed.
pub fn clean() {
    let Some(record) = Record::load() else {
        return;
    };
    eprintln!("cleaning up after a node whose teardown did not finish");
    let under_old = |path: &str| record.dirs.iter().any(|d| Path::new(path).starts_with(d));
    // Containers first (their shims are their parents), then anything else still running
    // from the old directories: shims (`-address <dir>/containerd.sock`), a kubelet, etcd.
    for (id, bundle) in runc_containers() {
        if under_old(&bundle) {
            eprintln!("  container {id}");
            let _ = runc(&["kill", &id, "KILL"]);
            let _ = runc(&["delete", "--force", &id]);
        }
    }
    // What runc did not know of: the processes under the shims (a shim is its containers'
    // parent), then the shims themselves.
    let named = processes_naming(&record.dirs);
    for pid in descendants(&named).into_iter().chain(named) {
        eprintln!("  process {pid}");
        // SAFETY: a plain kill(2) of a process found in /proc.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    for dir in &record.dirs {
        crate::node::unmount_under(dir);
    }
    for ns in crate::node::netns() {
        if ns.starts_with("cni-") && !record.netns_before.contains(&ns) {
            eprintln!("  network namespace {ns}");
            crate::node::ip(&["netns", "del", &ns]);
        }
    }
    for dir in &record.dirs {
        let _ = std::fs::remove_dir_all(dir);
    }
    forget();
}

fn runc(args: &[&str]) -> std::io::Result<std::process::Output> {
    Command::new("runc")
        .args(["--root", RUNC_ROOT])
        .args(args)
        .output()
}

/// `(id, bundle)` of every container runc knows in the kubelet's namespace.
fn runc_containers() -> Vec<(String, String)> {
    let Ok(out) = runc(&["list", "--format", "json"]) else {
        return Vec::new();
    };
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| Some((c["id"].as_str()?.into(), c["bundle"].as_str()?.into())))
        .collect()
}

/// Processes whose command line names a path under one of `dirs`.
fn processes_naming(dirs: &[PathBuf]) -> Vec<i32> {
    let own = std::process::id() as i32;
    let dirs: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != own)
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            dirs.iter().any(|d| cmdline.contains(d.as_str()))
        })
        .collect()
}

/// Every process below `roots` in the process tree, deepest last.
fn descendants(roots: &[i32]) -> Vec<i32> {
    let parents: Vec<(i32, i32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<i32>().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // "pid (comm) state ppid ...": comm may hold spaces, so read after its ')'.
            let ppid = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some((pid, ppid))
        })
        .collect();
    let mut found = Vec::new();
    let mut frontier = roots.to_vec();
    while let Some(parent) = frontier.pop() {
        for &(pid, ppid) in &parents {
            if ppid == parent && !found.contains(&pid) {
                found.push(pid);
                frontier.push(pid);
            }
        }
    }
    found
}
