//! Image metrics: pulls by result, blob downloads and their bytes, and pull time.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PullLabels {
    /// `downloaded`, `present` (served from the store) or the failure reason.
    result: String,
}

#[derive(Clone)]
pub struct ImageMetrics(Arc<Inner>);

struct Inner {
    pulls: Family<PullLabels, Counter>,
    downloads: Counter,
    download_bytes: Counter,
    pull_time: Histogram,
}

impl Default for ImageMetrics {
    fn default() -> Self {
        Self(Arc::new(Inner {
            pulls: Family::default(),
            downloads: Counter::default(),
            download_bytes: Counter::default(),
            // 1 ms to ~65 s.
            pull_time: Histogram::new(exponential_buckets(0.001, 2.0, 17)),
        }))
    }
}

impl ImageMetrics {
    pub fn register(&self, registry: &mut Registry) {
        let m = &self.0;
        registry.register(
            "weft_image_pulls",
            "Image pulls by result: downloaded, present (from the host's store), or the failure reason",
            m.pulls.clone(),
        );
        registry.register(
            "weft_blob_downloads",
            "Component blobs downloaded from registries",
            m.downloads.clone(),
        );
        registry.register(
            "weft_blob_download_bytes",
            "Bytes of component blobs downloaded from registries",
            m.download_bytes.clone(),
        );
        registry.register(
            "weft_image_pull_duration_seconds",
            "Time to resolve and fetch an image, including store hits",
            m.pull_time.clone(),
        );
    }

    pub(super) fn record_pull(&self, result: &str, took: Duration) {
        self.0
            .pulls
            .get_or_create(&PullLabels {
                result: result.into(),
            })
            .inc();
        self.0.pull_time.observe(took.as_secs_f64());
    }

    pub(super) fn record_download(&self, bytes: usize) {
        self.0.downloads.inc();
        self.0.download_bytes.inc_by(bytes as u64);
    }
}
