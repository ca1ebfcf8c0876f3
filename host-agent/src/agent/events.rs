//! Kubernetes Events (`events.k8s.io`) from this host on the Workloads it runs: what the
//! launcher, the reconciler and the runtime's service supervisor report ([`crate::lifecycle`]),
//! so `kubectl describe wl` shows pulls, starts, back-offs, restarts and stops as it shows a
//! Pod's. A component's Event names it in `regarding.fieldPath` (`spec.components{api}`), as
//! the kubelet names containers; repeats of one Event are merged into a series (count and last
//! time) by the recorder, as the kubelet deduplicates. Publishing is best effort.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use tokio::sync::broadcast::error::RecvError;
use weft_api::Workload;
use weft_runtime::{ComponentState, StatusEvent};

use crate::lifecycle::{Reason, Report};

/// Name of the host-agent in Events (`reportingController`).
const CONTROLLER: &str = "weft-host-agent";

/// Publishes every report until both sources close, or the task is aborted.
pub fn spawn(
    client: kube::Client,
    host: &str,
    store: Store<Workload>,
    mut reports: tokio::sync::broadcast::Receiver<Report>,
    mut services: tokio::sync::broadcast::Receiver<StatusEvent>,
) -> tokio::task::JoinHandle<()> {
    let recorder = Recorder::new(
        client,
        Reporter {
            controller: CONTROLLER.to_owned(),
            instance: Some(host.to_owned()),
        },
    );
    tokio::spawn(async move {
        // The last reference seen per workload: a Workload that just left this host's watch
        // (moved, deleted) still gets its Killing and Stopped.
        let mut refs: HashMap<String, ObjectReference> = HashMap::new();
        loop {
            let report = tokio::select! {
                report = reports.recv() => match report {
                    Ok(report) => report,
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "dropped lifecycle Events: too many at once");
                        continue;
                    }
                    Err(RecvError::Closed) => break,
                },
                event = services.recv() => match event {
                    Ok(event) => match from_service(event) {
                        Some(report) => report,
                        None => continue,
                    },
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => break,
                },
            };
            publish(&recorder, &store, &mut refs, report).await;
        }
    })
}

/// A service's exit or give-up, as a report; `None` for other state changes.
fn from_service(event: StatusEvent) -> Option<Report> {
    let why = event.message.unwrap_or_default();
    let (reason, message) = match event.state {
        ComponentState::Restarting => (
            Reason::Unhealthy,
            format!("Service {} stopped: {why}", event.component),
        ),
        ComponentState::Failed => (
            Reason::Failed,
            format!(
                "Service {} used up its restarts after {} ({why})",
                event.component, event.restarts
            ),
        ),
        ComponentState::Running => return None,
    };
    Some(Report {
        workload: event.workload,
        component: Some(event.component),
        reason,
        message,
    })
}

async fn publish(
    recorder: &Recorder,
    store: &Store<Workload>,
    refs: &mut HashMap<String, ObjectReference>,
    report: Report,
) {
    let Some((namespace, name)) = report.workload.split_once('/') else {
        return;
    };
    if let Some(workload) = store.get(&ObjectRef::new(name).within(namespace)) {
        refs.insert(report.workload.clone(), workload.object_ref(&()));
    }
    let Some(mut regarding) = refs.get(&report.workload).cloned() else {
        return;
    };
    if report.reason == Reason::Stopped {
        refs.remove(&report.workload);
    }
    regarding.field_path = report
        .component
        .as_ref()
        .map(|c| format!("spec.components{{{c}}}"));
    let event = Event {
        type_: if report.reason.is_warning() {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: report.reason.as_str().to_owned(),
        note: Some(report.message),
        action: report.reason.as_str().to_owned(),
        secondary: None,
    };
    if let Err(err) = recorder.publish(&event, &regarding).await {
        tracing::warn!(workload = %report.workload, reason = event.reason, %err, "could not publish an Event");
    }
}
