//! Pulls component images into the host's store, honouring the pull policy, verifying every
//! byte against its digest before it is stored or returned, and fetching each reference and
//! each blob at most once at a time however many workloads ask for it.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use weft_api::PullPolicy;

use super::credentials::fingerprint;
use super::layout::{self, MAX_COMPONENT_BYTES};
use super::reference::{ImageSource, is_plain_http};
use super::store::ResolvedRef;
use super::{Credentials, ImageMetrics, ImageStore, PullError, RegistryProxy};

/// A component image ready to run.
#[derive(Clone, Debug)]
pub struct Pulled {
    pub wasm: Arc<[u8]>,
    /// The layer's digest: the sha256 of `wasm`.
    pub digest: String,
    /// `registry/repository@<manifest digest>`, as Kubernetes reports `imageID`.
    pub image_id: String,
    /// Whether the blob was downloaded by this pull (false when the store had it).
    pub downloaded: bool,
}

pub struct Puller {
    store: Arc<ImageStore>,
    insecure: Vec<String>,
    metrics: ImageMetrics,
    /// Every registry connection goes through it, when there are rules (see
    /// [`RegistryProxy`]).
    proxy: Option<RegistryProxy>,
    /// One lock per reference and per blob digest, so concurrent pulls of the same thing wait
    /// for the first and then find it in the store.
    inflight: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Puller {
    pub fn new(
        store: Arc<ImageStore>,
        insecure: Vec<String>,
        metrics: ImageMetrics,
        proxy: Option<RegistryProxy>,
    ) -> Self {
        Self {
            store,
            insecure,
            metrics,
            proxy,
            inflight: Mutex::default(),
        }
    }

    pub async fn pull(
        &self,
        reference: &Reference,
        policy: PullPolicy,
        credentials: &Credentials,
        on_fetch: impl FnOnce(),
    ) -> Result<Pulled, PullError> {
        let start = Instant::now();
        let result = self
            .pull_inner(reference, policy, credentials, on_fetch)
            .await;
        let label = match &result {
            Ok(p) if p.downloaded => "downloaded",
            Ok(_) => "present",
            Err(e) => e.reason(),
        };
        self.metrics.record_pull(label, start.elapsed());
        result
    }

    async fn pull_inner(
        &self,
        reference: &Reference,
        policy: PullPolicy,
        credentials: &Credentials,
        on_fetch: impl FnOnce(),
    ) -> Result<Pulled, PullError> {
        let whole = reference.whole();
        if policy != PullPolicy::Always {
            let _guard = self.lock(&whole).await;
            let auth = credentials.auth_for(reference.registry());
            let fingerprint = fingerprint(reference.registry(), &auth);
            // A stored image is reused only with credentials the registry accepted for it;
            // other credentials are checked with the registry first (a pull that finds the
            // blob stored downloads nothing).
            match self.stored(reference)? {
                Some((pulled, resolved)) if resolved.allows(&fingerprint) => return Ok(pulled),
                Some(_) if policy == PullPolicy::Never => {
                    return Err(PullError::NeverPullUnverified { image: whole });
                }
                Some(_) => {}
                None if policy == PullPolicy::Never => {
                    return Err(PullError::NeverPull { image: whole });
                }
                None => {}
            }
            on_fetch();
            return self.fetch(reference, credentials).await;
        }
        let _guard = self.lock(&whole).await;
        on_fetch();
        self.fetch(reference, credentials).await
    }

    /// The layer digest the store holds for `image`, asking no registry; `None` for a file or
    /// an image not stored.
    pub fn stored_digest(&self, image: &str) -> Option<String> {
        match ImageSource::parse(image, None).ok()? {
            ImageSource::Registry(reference) => self
                .store
                .resolve(&reference.whole())
                .map(|r| r.layer_digest),
            ImageSource::File(_) => None,
        }
    }

    /// What the store knows for this exact reference, and how it was pulled.
    fn stored(&self, reference: &Reference) -> Result<Option<(Pulled, ResolvedRef)>, PullError> {
        let Some(resolved) = self.store.resolve(&reference.whole()) else {
            return Ok(None);
        };
        Ok(self.store.read(&resolved.layer_digest)?.map(|wasm| {
            let pulled = Pulled {
                wasm,
                digest: resolved.layer_digest.clone(),
                image_id: image_id(reference, &resolved.manifest_digest),
                downloaded: false,
            };
            (pulled, resolved)
        }))
    }

    /// Resolves the manifest at the registry, then gets the layer from the store or downloads it.
    async fn fetch(
        &self,
        reference: &Reference,
        credentials: &Credentials,
    ) -> Result<Pulled, PullError> {
        let whole = reference.whole();
        let registry = reference.resolve_registry().to_string();
        let client = self.client(&registry);
        let auth = credentials.auth_for(reference.registry());
        let oci = |e| self.explain(PullError::from_oci(e, &whole, &registry), &registry);

        let (manifest, manifest_digest) = client
            .pull_image_manifest(reference, &auth)
            .await
            .map_err(oci)?;
        let layer = layout::wasm_layer(&manifest).map_err(|found| PullError::WrongMediaType {
            image: whole.clone(),
            found,
        })?;
        let digest = layer.digest.clone();

        let fingerprint = fingerprint(reference.registry(), &auth);
        let (wasm, downloaded) = {
            let _guard = self.lock(&digest).await;
            let stored = self.store.read(&digest)?;
            // A stored blob is lent to this reference only once its registry has shown, with
            // these credentials, that it has the blob: another tenant's registry may name a
            // private layer it never had (and probe what this host has cached).
            if stored.is_some() && !self.proven(&whole, &digest, &fingerprint) {
                client
                    .auth(reference, &auth, oci_client::RegistryOperation::Pull)
                    .await
                    .map_err(oci)?;
                if !client.blob_exists(reference, &digest).await.map_err(oci)? {
                    return Err(PullError::BlobNotInRegistry {
                        image: whole,
                        digest,
                    });
                }
            }
            match stored {
                Some(wasm) => (wasm, false),
                None => {
                    let size = download(
                        &self.store,
                        &client,
                        reference,
                        layer,
                        &auth,
                        &whole,
                        &registry,
                    )
                    .await?;
                    self.metrics.record_download(size);
                    // Read back (and hashed again) for compiling.
                    let wasm =
                        self.store
                            .read(&digest)?
                            .ok_or_else(|| PullError::DigestMismatch {
                                expected: digest.clone(),
                                actual: "nothing in the store after the download".into(),
                            })?;
                    (wasm, true)
                }
            }
        };
        // The registry accepted these credentials for this manifest: remember them (with
        // those it accepted before, while the reference still resolves to the same manifest).
        let mut pulled_with = self
            .store
            .resolve(&whole)
            .filter(|r| r.manifest_digest == manifest_digest)
            .map(|r| r.pulled_with)
            .unwrap_or_default();
        if !pulled_with.contains(&fingerprint) {
            pulled_with.push(fingerprint);
        }
        self.store.record(&ResolvedRef {
            reference: whole,
            manifest_digest: manifest_digest.clone(),
            layer_digest: digest.clone(),
            pulled_with,
        })?;
        Ok(Pulled {
            wasm,
            digest,
            image_id: image_id(reference, &manifest_digest),
            downloaded,
        })
    }

    /// Whether `reference` already resolved to layer `digest` with these credentials: its
    /// registry served (or showed) the blob to them.
    fn proven(&self, reference: &str, digest: &str, fingerprint: &str) -> bool {
        self.store.resolve(reference).is_some_and(|r| {
            r.layer_digest == digest && r.pulled_with.iter().any(|f| f == fingerprint)
        })
    }

    async fn lock(&self, key: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = self
            .inflight
            .lock()
            .entry(key.to_string())
            .or_default()
            .clone();
        lock.lock_owned().await
    }

    fn client(&self, registry: &str) -> Client {
        let proxy = self.proxy.as_ref().map(RegistryProxy::url);
        client(registry, &self.insecure, proxy)
    }

    /// `error`, or the reason the registry's address was refused when it was.
    fn explain(&self, error: PullError, registry: &str) -> PullError {
        match self.proxy.as_ref().and_then(|p| p.refusal(registry)) {
            Some(reason) => PullError::RegistryRefused {
                registry: registry.to_string(),
                reason,
            },
            None => error,
        }
    }
}

/// A registry client speaking HTTPS, or plain HTTP to loopback and listed insecure registries,
/// through `proxy` when given. A fresh client per pull: credentials read from a Secret may have
/// changed since the last one.
pub fn client(registry: &str, insecure: &[String], proxy: Option<String>) -> Client {
    let protocol = if is_plain_http(registry, insecure) {
        ClientProtocol::HttpsExcept(vec![registry.to_string()])
    } else {
        ClientProtocol::Https
    };
    Client::new(ClientConfig {
        protocol,
        connect_timeout: Some(Duration::from_secs(10)),
        read_timeout: Some(Duration::from_secs(60)),
        platform_resolver: Some(Box::new(layout::wasm_platform)),
        http_proxy: proxy.clone(),
        https_proxy: proxy,
        ..Default::default()
    })
}

/// Streams the layer to a file of the store, refusing more bytes than the manifest announced,
/// and makes it a blob only if it hashes to its digest: the layer is never whole in memory and
/// nothing sees unverified bytes. Returns its size.
async fn download(
    store: &ImageStore,
    client: &Client,
    reference: &Reference,
    layer: &OciDescriptor,
    auth: &RegistryAuth,
    image: &str,
    registry: &str,
) -> Result<usize, PullError> {
    // Blob requests reuse the token the manifest request obtained; authenticate explicitly in
    // case the client has none for this operation.
    client
        .auth(reference, auth, oci_client::RegistryOperation::Pull)
        .await
        .map_err(|e| PullError::from_oci(e, image, registry))?;
    let mut stream = client
        .pull_blob_stream(reference, layer)
        .await
        .map_err(|e| PullError::from_oci(e, image, registry))?;
    let limit = layer.size.clamp(0, MAX_COMPONENT_BYTES) as u64;
    let mut blob = store.writer()?;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| stream_error(e, image, registry))?;
        if blob.len() + chunk.len() as u64 > limit {
            return Err(PullError::DigestMismatch {
                expected: layer.digest.clone(),
                actual: format!("more than the announced {limit} bytes"),
            });
        }
        blob.write(&chunk)?;
    }
    let actual = blob.digest();
    if actual != layer.digest {
        return Err(PullError::DigestMismatch {
            expected: layer.digest.clone(),
            actual,
        });
    }
    let size = blob.len() as usize;
    blob.commit(&layer.digest)?;
    Ok(size)
}

/// oci-client's verifying stream reports a digest mismatch as an I/O error wrapping it.
fn stream_error(err: std::io::Error, image: &str, registry: &str) -> PullError {
    match err
        .get_ref()
        .and_then(|e| e.downcast_ref::<oci_client::errors::DigestError>())
    {
        Some(oci_client::errors::DigestError::VerificationError { expected, actual }) => {
            PullError::DigestMismatch {
                expected: expected.clone(),
                actual: actual.clone(),
            }
        }
        _ => PullError::Registry {
            registry: registry.to_string(),
            reason: format!("reading {image}: {err}"),
        },
    }
}

fn image_id(reference: &Reference, manifest_digest: &str) -> String {
    format!(
        "{}/{}@{manifest_digest}",
        reference.registry(),
        reference.repository()
    )
}
