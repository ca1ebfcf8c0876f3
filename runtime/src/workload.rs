//! Turning a [`WorkloadSpec`] into running parts: compile every component, check the host
//! serves what the workload asks for, bind plugins by the interfaces each component really
//! imports, link siblings, and find or make each component's instance template.

use std::collections::BTreeSet;
use std::sync::Arc;

use wasmtime::component::Linker;
use weft_api::WitInterface;

use crate::component_info::{ComponentInfo, unversioned};
use crate::engine::{CompiledComponent, Engine};
use crate::error::{Error, Result};
use crate::instance::{ComponentRuntime, Role};
use crate::linking;
use crate::loopback::Loopback;
use crate::metrics::RuntimeMetrics;
use crate::plugin::{self, ComponentBinding, HostPlugin};
use crate::service::EntryPoint;
use crate::spec::{ComponentSpec, WorkloadSpec};
use crate::store::{Ctx, Identity};
use crate::template::{Template, Templates};
use crate::volumes::{VolumePolicy, Volumes};

/// A workload whose components are compiled, bound and ready to instantiate.
pub struct ResolvedWorkload {
    /// What was asked for, the components' bytes emptied.
    pub spec: WorkloadSpec,
    /// In the order of `spec.components`.
    pub components: Vec<Arc<ComponentRuntime>>,
    /// The service, if the workload has one.
    pub service: Option<Arc<ComponentRuntime>>,
    /// Plugins bound to this workload, by id.
    pub plugins: Vec<&'static str>,
    _volumes: Arc<Volumes>,
}

impl ResolvedWorkload {
    /// `namespace/name`.
    pub fn id(&self) -> String {
        self.spec.id()
    }

    /// Components (not the service) exporting `interface` (unversioned, e.g.
    /// `wasi:http/incoming-handler`).
    pub fn exporting(&self, interface: &str) -> Vec<&Arc<ComponentRuntime>> {
        self.components
            .iter()
            .filter(|c| c.info.exports.iter().any(|e| unversioned(e) == interface))
            .collect()
    }
}

pub(crate) async fn resolve(
    engine: &Engine,
    templates: &Templates,
    plugins: &[Arc<dyn HostPlugin>],
    metrics: &RuntimeMetrics,
    volume_policy: &VolumePolicy,
    mut spec: WorkloadSpec,
) -> Result<ResolvedWorkload> {
    let id = spec.id();
    // The bytes are compiled once and then never needed: ten thousand workloads of one image
    // must not each keep a copy.
    let wasms: Vec<Arc<[u8]>> = spec
        .components
        .iter_mut()
        .chain(spec.service.as_mut().map(|s| &mut s.component))
        .map(|c| std::mem::replace(&mut c.wasm, Arc::from(Vec::new())))
        .collect();
    let invalid = |reason: String| Error::InvalidWorkload {
        workload: id.clone(),
        reason,
    };
    // The service goes last: it may import what components export, never the other way round.
    let items: Vec<&ComponentSpec> = spec
        .components
        .iter()
        .chain(spec.service.as_ref().map(|s| &s.component))
        .collect();
    if items.is_empty() {
        return Err(invalid("has neither components nor a service".into()));
    }
    let mut seen = BTreeSet::new();
    for item in &items {
        if !seen.insert(item.name.as_str()) {
            return Err(invalid(format!(
                "component name {} is used twice",
                item.name
            )));
        }
    }
    let has_service = spec.service.is_some();
    let service_index = items.len() - 1;

    let worlds: Vec<_> = plugins.iter().map(|p| p.world()).collect();
    let served: Vec<&WitInterface> = worlds
        .iter()
        .flat_map(|w| w.imports.iter().chain(&w.exports))
        .collect();
    for wanted in &spec.host_interfaces {
        if !plugin::serves(served.iter().copied(), &wanted.interface) {
            return Err(Error::UnservedInterface {
                interface: wanted.interface.to_string(),
            });
        }
    }

    let volumes = Arc::new(Volumes::prepare(&spec.volumes, volume_policy, &id)?);
    for item in &items {
        volumes.check_mounts(&item.name, &item.mounts)?;
    }

    let compiled = compile_all(engine, metrics, &items, has_service, wasms).await?;
    if let Some(service) = &spec.service
        && let Err(reason) = EntryPoint::of(&compiled[service_index].code.component)
    {
        return Err(Error::InvalidComponent {
            component: service.component.name.clone(),
            reason,
        });
    }

    let names: Vec<&str> = items.iter().map(|c| c.name.as_str()).collect();
    let infos: Vec<&ComponentInfo> = compiled.iter().map(|c| &*c.code.info).collect();
    let (mut links, order) = linking::plan(&names, &infos)?;
    if has_service {
        // Components cannot call into the service; such an import must come from a plugin.
        for (i, consumer) in links.iter_mut().enumerate() {
            if i != service_index {
                consumer.retain(|(_, provider)| *provider != service_index);
            }
        }
    }

    // Which plugins serve which component, and what nothing serves.
    let mut bound: Vec<Vec<usize>> = vec![Vec::new(); items.len()];
    for (i, info) in infos.iter().enumerate() {
        let mut missing = Vec::new();
        for import in &info.imports {
            if links[i].iter().any(|(name, _)| name == import) {
                continue;
            }
            let provider = import
                .parse::<WitInterface>()
                .ok()
                .and_then(|wanted| worlds.iter().position(|w| w.provides(&wanted)));
            match provider {
                Some(p) if !bound[i].contains(&p) => bound[i].push(p),
                Some(_) => {}
                None => missing.push(import.clone()),
            }
        }
        if !missing.is_empty() {
            return Err(Error::MissingImports {
                component: items[i].name.clone(),
                missing,
            });
        }
    }
    let used: BTreeSet<usize> = bound
        .iter()
        .flatten()
        .copied()
        .chain(worlds.iter().enumerate().filter_map(|(p, world)| {
            let drives = infos
                .iter()
                .flat_map(|i| &i.exports)
                .any(|e| e.parse::<WitInterface>().is_ok_and(|e| world.drives(&e)));
            drives.then_some(p)
        }))
        .collect();
    for &p in &used {
        plugins[p]
            .on_workload_bind(&spec)
            .await
            .map_err(|e| plugin_error(plugins[p].as_ref(), e))?;
    }

    let loopback = Loopback::default();
    let mut runtimes: Vec<Option<Arc<ComponentRuntime>>> = vec![None; items.len()];
    for &i in &order {
        let item = items[i];
        let is_service = has_service && i == service_index;
        let code = &compiled[i].code;
        bound[i].sort_unstable();
        let mut states = Vec::new();
        for &p in &bound[i] {
            let binding = ComponentBinding {
                workload: &spec,
                component: item,
                info: &code.info,
                is_service,
                interfaces: spec
                    .host_interfaces
                    .iter()
                    .filter(|entry| worlds[p].serves_package(entry))
                    .collect(),
            };
            let state = plugins[p]
                .on_component_bind(&binding)
                .map_err(|e| plugin_error(plugins[p].as_ref(), e))?;
            states.extend(state);
        }
        let linked: Vec<&Arc<dyn HostPlugin>> = bound[i].iter().map(|&p| &plugins[p]).collect();
        let link = |extra: &dyn Fn(&mut Linker<Ctx>) -> Result<()>| {
            Template::link(&item.name, code, &linked, extra)
        };
        let template = if links[i].is_empty() {
            let key = (
                code.info.digest.clone(),
                code.tier,
                linked.iter().map(|p| p.id()).collect(),
            );
            templates.get_or_make(&key, || link(&|_| Ok(())))?.0
        } else {
            Arc::new(link(&|linker| {
                for (import, provider) in &links[i] {
                    let provider = runtimes[*provider]
                        .clone()
                        .expect("providers are prepared first");
                    linking::wire(linker, &code.component, &item.name, import, provider)?;
                }
                Ok(())
            })?)
        };
        let role = if is_service {
            Role::Service
        } else {
            Role::Component
        };
        runtimes[i] = Some(Arc::new(ComponentRuntime::new(
            Identity {
                workload: id.as_str().into(),
                component: item.name.as_str().into(),
            },
            item.clone(),
            role,
            template,
            volumes.clone(),
            states,
            loopback.clone(),
            metrics.clone(),
        )));
    }

    let mut runtimes: Vec<Arc<ComponentRuntime>> = runtimes.into_iter().flatten().collect();
    let service = has_service.then(|| runtimes.remove(service_index));
    Ok(ResolvedWorkload {
        plugins: used.iter().map(|&p| plugins[p].id()).collect(),
        spec,
        components: runtimes,
        service,
        _volumes: volumes,
    })
}

/// Compiling is CPU-bound: keep it off the async workers. A service (the last item) gets
/// Cranelift's code at once: it runs for long, and moving it to other code would restart it.
async fn compile_all(
    engine: &Engine,
    metrics: &RuntimeMetrics,
    items: &[&ComponentSpec],
    has_service: bool,
    wasms: Vec<Arc<[u8]>>,
) -> Result<Vec<CompiledComponent>> {
    let mut compiled = Vec::with_capacity(items.len());
    let service = has_service.then(|| items.len() - 1);
    for (i, (item, wasm)) in items.iter().zip(wasms).enumerate() {
        let (engine, name) = (engine.clone(), item.name.clone());
        let result = tokio::task::spawn_blocking(move || {
            if Some(i) == service {
                engine.optimize(&name, &wasm)
            } else {
                engine.compile(&name, &wasm)
            }
        })
        .await
        .map_err(|e| Error::Engine {
            what: "the compile task failed",
            source: e.into(),
        })??;
        metrics.record_compile(result.source, result.compile_time);
        compiled.push(result);
    }
    Ok(compiled)
}

pub(crate) fn plugin_error(plugin: &dyn HostPlugin, source: wasmtime::Error) -> Error {
    Error::Plugin {
        plugin: plugin.id().to_string(),
        source,
    }
}
