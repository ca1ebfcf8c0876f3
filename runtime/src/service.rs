//! Supervises a workload's long-running service: runs its entry point (`wasi:cli/run`, or the one
//! function of the one custom interface it exports), and when it exits or traps restarts it with
//! exponential back-off, up to `maxRestarts`.

use parking_lot::Mutex;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, ComponentExportIndex, Val};

use crate::component_info::unversioned;
use crate::instance::ComponentRuntime;
use crate::status::{ComponentState, StatusEvent};

const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A service that ran this long before stopping starts its back-off afresh.
const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(60);

/// The interface a service most often exports to be run.
pub const CLI_RUN: &str = "wasi:cli/run";

/// How a service is started: the seed's two forms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum EntryPoint {
    /// `wasi:cli/run.run`.
    CliRun,
    /// A service exporting exactly one custom interface instead: that interface's one function,
    /// which takes no parameters.
    Custom { interface: String, function: String },
}

impl EntryPoint {
    /// The entry point of `component` as a service, or why it has none. The one rule: the
    /// runtime refuses a workload by it and the supervisor starts the service by it.
    pub(crate) fn of(component: &Component) -> Result<Self, String> {
        let exports: Vec<(String, ComponentItem)> = component
            .component_type()
            .exports(component.engine())
            .map(|(name, item)| (name.to_string(), item.ty))
            .collect();
        if exports.iter().any(|(name, _)| unversioned(name) == CLI_RUN) {
            return Ok(Self::CliRun);
        }
        let [(interface, ComponentItem::ComponentInstance(instance))] = exports.as_slice() else {
            let names: Vec<&str> = exports.iter().map(|(n, _)| n.as_str()).collect();
            return Err(format!(
                "a service must export {CLI_RUN} or exactly one interface; it exports {}",
                if names.is_empty() {
                    "nothing".to_string()
                } else {
                    names.join(", ")
                }
            ));
        };
        let functions: Vec<(String, usize)> = instance
            .exports(component.engine())
            .filter_map(|(name, item)| match item.ty {
                ComponentItem::ComponentFunc(f) => Some((name.to_string(), f.params().len())),
                _ => None,
            })
            .collect();
        match functions.as_slice() {
            [(function, 0)] => Ok(Self::Custom {
                interface: interface.clone(),
                function: function.clone(),
            }),
            _ => Err(format!(
                "a service exporting {interface} instead of {CLI_RUN} is started by that interface's one function, which takes no parameters; it has {}",
                functions
                    .iter()
                    .map(|(f, n)| format!("{f} ({n} parameters)"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
}

/// The entry point's function, found once: `run` of `wasi:cli/run` (0.2, or 0.3's `async`
/// one), or the custom interface's one function. Each is called the same way.
struct Entry(ComponentExportIndex);

impl Entry {
    fn prepare(runtime: &ComponentRuntime) -> wasmtime::Result<Self> {
        let pre = runtime.instance_pre();
        let component = pre.component();
        let (interface, function) = match EntryPoint::of(component).map_err(wasmtime::Error::msg)? {
            EntryPoint::CliRun => {
                let name = runtime
                    .info
                    .export_of(CLI_RUN)
                    .ok_or_else(|| wasmtime::format_err!("no export {CLI_RUN}"))?;
                (name.to_string(), "run".to_string())
            }
            EntryPoint::Custom {
                interface,
                function,
            } => (interface, function),
        };
        let interface = component
            .get_export_index(None, &interface)
            .ok_or_else(|| wasmtime::format_err!("no export {interface}"))?;
        let function = component
            .get_export_index(Some(&interface), &function)
            .ok_or_else(|| wasmtime::format_err!("no function {function}"))?;
        Ok(Self(function))
    }
}

#[derive(Clone, Debug)]
pub struct ServiceStatus {
    pub state: ComponentState,
    pub restarts: u32,
    pub message: Option<String>,
}

pub(crate) struct Supervisor {
    status: Arc<Mutex<ServiceStatus>>,
    task: JoinHandle<()>,
}

impl Supervisor {
    pub(crate) fn start(
        runtime: Arc<ComponentRuntime>,
        max_restarts: Option<u32>,
        events: broadcast::Sender<StatusEvent>,
    ) -> wasmtime::Result<Self> {
        let entry = Arc::new(Entry::prepare(&runtime)?);
        let status = Arc::new(Mutex::new(ServiceStatus {
            state: ComponentState::Running,
            restarts: 0,
            message: None,
        }));
        let reporter = Reporter {
            runtime: runtime.clone(),
            status: status.clone(),
            events,
        };
        let task = tokio::spawn(supervise(runtime, entry, max_restarts, reporter));
        Ok(Self { status, task })
    }

    pub(crate) fn status(&self) -> ServiceStatus {
        self.status.lock().clone()
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        // Dropping the task drops the running store; the guest stops at its next epoch yield.
        self.task.abort();
    }
}

struct Reporter {
    runtime: Arc<ComponentRuntime>,
    status: Arc<Mutex<ServiceStatus>>,
    events: broadcast::Sender<StatusEvent>,
}

impl Reporter {
    fn set(&self, state: ComponentState, restarts: u32, message: Option<String>) {
        let id = &self.runtime.identity;
        match (&state, &message) {
            (ComponentState::Running, _) => {
                tracing::info!(
                    workload = &*id.workload,
                    component = &*id.component,
                    restarts,
                    "service running"
                )
            }
            (_, message) => {
                tracing::warn!(
                    workload = &*id.workload,
                    component = &*id.component,
                    restarts,
                    ?state,
                    message = message.as_deref().unwrap_or(""),
                    "service stopped"
                )
            }
        }
        *self.status.lock() = ServiceStatus {
            state,
            restarts,
            message: message.clone(),
        };
        // Nobody listening is fine.
        let _ = self.events.send(StatusEvent {
            workload: id.workload.to_string(),
            component: id.component.to_string(),
            state,
            restarts,
            message,
        });
    }
}

async fn supervise(
    runtime: Arc<ComponentRuntime>,
    entry: Arc<Entry>,
    max_restarts: Option<u32>,
    reporter: Reporter,
) {
    let mut restarts = 0;
    let mut backoff = BACKOFF_START;
    loop {
        reporter.set(ComponentState::Running, restarts, None);
        let started = Instant::now();
        let why = run_once(&runtime, &entry).await;
        if started.elapsed() >= BACKOFF_RESET_AFTER {
            backoff = BACKOFF_START;
        }
        if max_restarts.is_some_and(|max| restarts >= max) {
            reporter.set(
                ComponentState::Failed,
                restarts,
                Some(format!("{why}; gave up after {restarts} restarts")),
            );
            return;
        }
        restarts += 1;
        runtime.series().record_restart();
        reporter.set(
            ComponentState::Restarting,
            restarts,
            Some(format!("{why}; restarting in {backoff:?}")),
        );
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Runs the service once and says why it stopped.
async fn run_once(runtime: &ComponentRuntime, entry: &Arc<Entry>) -> String {
    let entry = entry.clone();
    let result = runtime
        .invoke("wasi:cli/run.run", move |guest| {
            Box::pin(async move {
                let accessor = guest.accessor;
                let func = accessor
                    .with(|mut access| guest.instance.get_func(&mut access, entry.0))
                    .ok_or_else(|| wasmtime::format_err!("entry point not found"))?;
                let count = accessor.with(|access| func.ty(&access).results().len());
                let mut results = vec![Val::Bool(false); count];
                func.call_concurrent(accessor, &[], &mut results).await?;
                // A `result` returned as an error counts as exiting with one.
                Ok(match results.first() {
                    Some(Val::Result(Err(_))) => Err(()),
                    _ => Ok(()),
                })
            })
        })
        .await;
    match result {
        Ok(Ok(())) => "exited".to_string(),
        Ok(Err(())) => "exited with an error".to_string(),
        Err(failure) => failure.to_string(),
    }
}
