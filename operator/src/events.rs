//! Kubernetes Events (`events.k8s.io`) on Workloads and WorkloadDeployments. Publishing is best effort: a failed Event is
//! logged and never fails a reconciliation.
//!
//! Each Event gets a fresh [`Recorder`]: a shared one merges Events with the same reason into a
//! series that keeps the first note, so a second FailedScheduling or Moved would show the old
//! message. The operator emits Events only on changes, so there is little to merge anyway.

use kube::Client;
use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

use crate::error::chain;

/// Reason of the Event emitted when a Workload is first assigned to a Host.
pub const SCHEDULED: &str = "Scheduled";
/// Reason of the Event emitted when no Host fits (once per distinct message).
pub const FAILED_SCHEDULING: &str = "FailedScheduling";
/// Reason of the Event emitted when a Workload leaves a Host that is no longer schedulable.
pub const MOVED: &str = "Moved";
/// Reason of the Event emitted when a deleted Workload's finalizer is released.
pub const STOPPED: &str = "Stopped";

/// Reason of the Event emitted when a WorkloadDeployment creates or deletes replicas (the
/// Deployment controller's word).
pub const SCALING: &str = "ScalingReplicaSet";

/// Publishes an Event about `object`.
pub async fn publish<K: Resource<DynamicType = ()>>(
    client: &Client,
    reporter: &Reporter,
    object: &K,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let event = Event {
        type_,
        reason: reason.to_owned(),
        note: Some(note),
        action: action.to_owned(),
        secondary: None,
    };
    let recorder = Recorder::new(client.clone(), reporter.clone());
    if let Err(error) = recorder.publish(&event, &object.object_ref(&())).await {
        tracing::warn!(
            object = %object.meta().name.as_deref().unwrap_or_default(),
            reason,
            error = %chain(&error),
            "could not publish an Event"
        );
    }
}
