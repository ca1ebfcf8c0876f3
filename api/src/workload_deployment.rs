//! The `WorkloadDeployment` custom resource: `replicas` copies of one Workload template, rolled
//! out the way a Deployment rolls out Pods, with a `/scale` subresource for `kubectl scale` and
//! HorizontalPodAutoscalers. The operator owns the Workloads it makes from the template.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::DeploymentCondition;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::core::{Message, Reason, Rule};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::workload::WorkloadSpec;
use crate::workload_status::HostnameClaim;

/// Most replicas one WorkloadDeployment may ask for.
pub const MAX_REPLICAS: i32 = 10_000;
/// Most labels or annotations a template may carry (bounds the cost of the CEL rule on them).
pub const MAX_TEMPLATE_METADATA: u32 = 64;

fn default_replicas() -> i32 {
    1
}

/// The name becomes the `weft.dev/deployment` label of every replica.
fn name_is_a_label_value() -> Rule {
    Rule::new("size(self.metadata.name) <= 63")
        .message(Message::Message(
            "metadata.name: a WorkloadDeployment's name is a label value, at most 63 characters"
                .into(),
        ))
        .reason(Reason::FieldValueInvalid)
}

/// Labels under `weft.dev/` are Weft's: a template setting `weft.dev/host` would have the
/// operator, which the admission policy trusts, assign its replicas.
fn no_weft_labels() -> Rule {
    Rule::new("!has(self.labels) || self.labels.all(k, !k.startsWith('weft.dev/'))")
        .message(Message::Message(
            "labels with the prefix weft.dev/ are set by Weft, not by a template".into(),
        ))
        .field_path(".labels")
        .reason(Reason::FieldValueForbidden)
}

/// `field` of a rolling update is a non-negative number or a percentage.
fn count_or_percent(field: &str) -> Rule {
    Rule::new(format!(
        "!has(self.{field}) || (type(self.{field}) == int ? self.{field} >= 0 : self.{field}.matches('^[0-9]{{1,3}}%$'))"
    ))
    .message(Message::Message(format!(
        "{field} must be a number of replicas or a percentage such as 25%"
    )))
    .field_path(format!(".{field}"))
    .reason(Reason::FieldValueInvalid)
}

/// The desired state of a WorkloadDeployment.
// Clippy mistakes the repeated `type_ = "integer"` of the printer columns for duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "weft.dev",
    version = "v1alpha1",
    kind = "WorkloadDeployment",
    namespaced,
    shortname = "wd",
    category = "weft",
    status = "WorkloadDeploymentStatus",
    derive = "PartialEq",
    doc = "Replicas of one Workload template, spread across Hosts and replaced by rolling updates, like a Deployment of Pods.",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    ),
    validation = name_is_a_label_value(),
    printcolumn(
        name = "Desired",
        type_ = "integer",
        json_path = ".spec.replicas",
        description = "Replicas asked for"
    ),
    printcolumn(
        name = "Ready",
        type_ = "integer",
        json_path = ".status.readyReplicas",
        description = "Replicas whose every component runs"
    ),
    printcolumn(
        name = "Up-to-date",
        type_ = "integer",
        json_path = ".status.updatedReplicas",
        description = "Replicas made from the current template"
    ),
    printcolumn(
        name = "Available",
        type_ = "integer",
        json_path = ".status.availableReplicas",
        description = "Replicas serving"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadDeploymentSpec {
    /// How many Workloads to run from the template. The `/scale` subresource sets it.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0, max = MAX_REPLICAS))]
    pub replicas: i32,

    /// The Workload every replica is made from.
    pub template: WorkloadTemplate,

    /// How replicas of an old template are replaced by replicas of a new one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<DeploymentStrategy>,

    /// How many old templates to keep as ControllerRevisions (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1000))]
    pub revision_history_limit: Option<i32>,

    /// Stops rolling out template changes until unpaused; scaling still happens.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,

    /// Seconds a rollout may go without progress before `Progressing` turns False with reason `ProgressDeadlineExceeded` (default 600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 86_400))]
    pub progress_deadline_seconds: Option<i32>,
}

/// The Workload a replica is made from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadTemplate {
    /// Labels and annotations every replica carries.
    #[serde(default, skip_serializing_if = "TemplateMetadata::is_empty")]
    pub metadata: TemplateMetadata,

    /// The spec of every replica.
    pub spec: WorkloadSpec,
}

/// Labels and annotations of a replica.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = no_weft_labels())]
pub struct TemplateMetadata {
    /// Labels of every replica. Keys with the prefix `weft.dev/` are Weft's and are refused.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = MAX_TEMPLATE_METADATA))]
    pub labels: BTreeMap<String, String>,

    /// Annotations of every replica.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = MAX_TEMPLATE_METADATA))]
    pub annotations: BTreeMap<String, String>,
}

impl TemplateMetadata {
    fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.annotations.is_empty()
    }
}

/// How replicas of an old template are replaced.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentStrategy {
    /// `RollingUpdate` (default) or `Recreate`.
    #[serde(default, rename = "type")]
    pub type_: StrategyType,

    /// Bounds of a rolling update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolling_update: Option<RollingUpdate>,
}

/// `RollingUpdate` or `Recreate`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum StrategyType {
    /// Replace replicas a few at a time, within `maxSurge` and `maxUnavailable`.
    #[default]
    RollingUpdate,
    /// Delete every old replica, then create the new ones.
    Recreate,
}

/// How far a rolling update may go above and below `replicas`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = count_or_percent("maxSurge"),
    validation = count_or_percent("maxUnavailable")
)]
pub struct RollingUpdate {
    /// Replicas allowed above `replicas` during an update: a number or a percentage of `replicas`, rounded up (default 25%).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_surge: Option<IntOrString>,

    /// Replicas allowed to be unavailable during an update: a number or a percentage of `replicas`, rounded down (default 25%). When both are 0, one may be unavailable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<IntOrString>,
}

/// The observed state of a WorkloadDeployment.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadDeploymentStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Replicas that exist and are not being deleted, of any template.
    #[serde(default)]
    pub replicas: i32,

    /// Replicas made from the current template.
    #[serde(default)]
    pub updated_replicas: i32,

    /// Replicas whose Workload is Ready.
    #[serde(default)]
    pub ready_replicas: i32,

    /// Replicas serving (Ready; Weft has no minReadySeconds, so the same as readyReplicas).
    #[serde(default)]
    pub available_replicas: i32,

    /// Replicas still needed for `replicas` to be available.
    #[serde(default)]
    pub unavailable_replicas: i32,

    /// The label selector of the replicas, as a string (what the `/scale` subresource reports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,

    /// The hash of the current template (the `weft.dev/template-hash` label of its replicas).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_hash: Option<String>,

    /// `Available` (at least `replicas - maxUnavailable` serve) and `Progressing` (the rollout moves, is done, or exceeded its deadline), as a Deployment's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<DeploymentCondition>,

    /// The HTTP host names the template claims, each with when the WorkloadDeployment first claimed it: its replicas hold a name by this claim, so a rollout keeps it and a template edited to name a contested host does not take it. Written by the operator.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub hostnames: Vec<HostnameClaim>,
}

impl WorkloadDeploymentSpec {
    /// The strategy, defaults filled in.
    pub fn strategy_type(&self) -> StrategyType {
        self.strategy.as_ref().map(|s| s.type_).unwrap_or_default()
    }

    /// `(maxSurge, maxUnavailable)` resolved against `replicas` as Deployments do: the surge
    /// rounded up, the unavailable rounded down, and one unavailable allowed when both are 0.
    /// Recreate has neither.
    pub fn rolling_bounds(&self) -> (i32, i32) {
        if self.strategy_type() == StrategyType::Recreate {
            return (0, self.replicas);
        }
        let rolling = self
            .strategy
            .as_ref()
            .and_then(|s| s.rolling_update.as_ref());
        let quarter = IntOrString::String("25%".to_owned());
        let surge = rolling
            .and_then(|r| r.max_surge.as_ref())
            .unwrap_or(&quarter);
        let unavailable = rolling
            .and_then(|r| r.max_unavailable.as_ref())
            .unwrap_or(&quarter);
        let surge = resolve(surge, self.replicas, true);
        let unavailable = resolve(unavailable, self.replicas, false);
        if surge == 0 && unavailable == 0 {
            (0, 1)
        } else {
            (surge, unavailable)
        }
    }

    /// Seconds without progress before the rollout is declared stuck.
    pub fn progress_deadline(&self) -> i64 {
        i64::from(self.progress_deadline_seconds.unwrap_or(600))
    }

    /// ControllerRevisions kept besides the current one.
    pub fn history_limit(&self) -> usize {
        usize::try_from(self.revision_history_limit.unwrap_or(10)).unwrap_or(0)
    }
}

/// A number of replicas, or a percentage of `of` rounded up or down. A value the CRD would refuse
/// counts as 0.
fn resolve(value: &IntOrString, of: i32, round_up: bool) -> i32 {
    match value {
        IntOrString::Int(n) => (*n).max(0),
        IntOrString::String(s) => {
            let percent: i64 = s
                .strip_suffix('%')
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            let scaled = percent * i64::from(of.max(0));
            let value = if round_up {
                (scaled + 99) / 100
            } else {
                scaled / 100
            };
            i32::try_from(value).unwrap_or(i32::MAX)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(replicas: i32, strategy: &str) -> WorkloadDeploymentSpec {
        serde_yaml::from_str(&format!(
            "replicas: {replicas}
template: {{spec: {{components: [{{name: c, image: r/c:1}}]}}}}
{strategy}"
        ))
        .unwrap()
    }

    #[test]
    fn bounds_follow_the_deployment_rules() {
        assert_eq!(spec(3, "").rolling_bounds(), (1, 0));
        assert_eq!(spec(4, "").rolling_bounds(), (1, 1));
        assert_eq!(spec(10, "").rolling_bounds(), (3, 2));
        let fixed = "strategy: {rollingUpdate: {maxSurge: 0, maxUnavailable: 0}}";
        assert_eq!(spec(3, fixed).rolling_bounds(), (0, 1));
        let mixed = "strategy: {rollingUpdate: {maxSurge: 2, maxUnavailable: 50%}}";
        assert_eq!(spec(5, mixed).rolling_bounds(), (2, 2));
        assert_eq!(
            spec(3, "strategy: {type: Recreate}").rolling_bounds(),
            (0, 3)
        );
    }

    #[test]
    fn defaults() {
        let spec: WorkloadDeploymentSpec =
            serde_yaml::from_str("template: {spec: {components: [{name: c, image: r/c:1}]}}")
                .unwrap();
        assert_eq!(spec.replicas, 1);
        assert_eq!(spec.strategy_type(), StrategyType::RollingUpdate);
        assert_eq!(spec.progress_deadline(), 600);
        assert_eq!(spec.history_limit(), 10);
    }
}
