//! Supervises a workload's long-running service: runs its `wasi:cli/run`, and when it exits or
//! traps restarts it with exponential back-off, up to `maxRestarts`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use wasmtime_wasi::p2::bindings::CommandIndices;

use crate::instance::ComponentRuntime;
use crate::metrics::RuntimeMetrics;
use crate::status::{ComponentState, StatusEvent};

const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A service that ran this long before stopping starts its back-off afresh.
const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(60);

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
        metrics: RuntimeMetrics,
        events: broadcast::Sender<StatusEvent>,
    ) -> wasmtime::Result<Self> {
        let indices = Arc::new(CommandIndices::new(runtime.instance_pre())?);
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
        let task = tokio::spawn(supervise(runtime, indices, max_restarts, metrics, reporter));
        Ok(Self { status, task })
    }

    pub(crate) fn status(&self) -> ServiceStatus {
        self.status.lock().expect("service status lock").clone()
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
        *self.status.lock().expect("service status lock") = ServiceStatus {
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
    indices: Arc<CommandIndices>,
    max_restarts: Option<u32>,
    metrics: RuntimeMetrics,
    reporter: Reporter,
) {
    let mut restarts = 0;
    let mut backoff = BACKOFF_START;
    loop {
        reporter.set(ComponentState::Running, restarts, None);
        let started = Instant::now();
        let why = run_once(&runtime, &indices).await;
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
        metrics.record_service_restart(&runtime.identity);
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
async fn run_once(runtime: &ComponentRuntime, indices: &Arc<CommandIndices>) -> String {
    let indices = indices.clone();
    let result = runtime
        .invoke(move |store, instance| {
            Box::pin(async move {
                let command = indices.load(&mut *store, &instance)?;
                command.wasi_cli_run().call_run(&mut *store).await
            })
        })
        .await;
    match result {
        Ok(Ok(())) => "exited".to_string(),
        Ok(Err(())) => "exited with an error".to_string(),
        Err(failure) => failure.to_string(),
    }
}
