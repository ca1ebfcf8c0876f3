//! A plugin written outside the runtime crate, the way a platform team would add a capability:
//! it serves a WIT interface with a resource, keeps its per-store state in its own slot, and
//! reads its configuration from several named `hostInterfaces` entries of one package.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::common::*;
use wasmtime::component::{HasData, Linker, Resource};
use weft_runtime::ComponentBinding;
use weft_runtime::ComponentInfo;
use weft_runtime::{Ctx, HostPlugin, PluginView, StateFactory, WitWorld};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../examples/wit",
        world: "tally-http",
        imports: { default: trappable },
        with: { "weft:examples/tally.counter": super::Counter },
    });
}

use bindings::weft::examples::tally::{Host, HostCounter};

/// The resource: a counter that starts at its entry's `start`.
pub struct Counter {
    value: u64,
}

/// The plugin's state in one store: where each named entry's counter starts.
struct TallyState {
    starts: Arc<HashMap<String, u64>>,
}

struct Tally;

impl HasData for Tally {
    type Data<'a> = PluginView<'a, TallyState>;
}

impl Host for PluginView<'_, TallyState> {}

impl HostCounter for PluginView<'_, TallyState> {
    fn new(&mut self, name: String) -> wasmtime::Result<Resource<Counter>> {
        let Some(&value) = self.state.starts.get(&name) else {
            wasmtime::bail!("no weft:examples hostInterfaces entry is named {name:?}");
        };
        Ok(self.table.push(Counter { value })?)
    }

    fn next(&mut self, counter: Resource<Counter>) -> wasmtime::Result<u64> {
        let counter = self.table.get_mut(&counter)?;
        counter.value += 1;
        Ok(counter.value)
    }

    fn drop(&mut self, counter: Resource<Counter>) -> wasmtime::Result<()> {
        self.table.delete(counter)?;
        Ok(())
    }
}

#[derive(Default)]
struct TallyPlugin {
    states_made: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl HostPlugin for TallyPlugin {
    fn id(&self) -> &'static str {
        "tally"
    }

    fn world(&self) -> WitWorld {
        WitWorld {
            imports: vec!["weft:examples/tally@0.1.0".parse().unwrap()],
            exports: Vec::new(),
        }
    }

    fn add_to_linker(
        &self,
        linker: &mut Linker<Ctx>,
        _component: &ComponentInfo,
    ) -> wasmtime::Result<()> {
        bindings::weft::examples::tally::add_to_linker::<Ctx, Tally>(linker, |ctx| {
            ctx.plugin_view::<TallyState>()
        })
    }

    fn on_component_bind(
        &self,
        binding: &ComponentBinding<'_>,
    ) -> wasmtime::Result<Option<StateFactory>> {
        // Each entry's own config: the unnamed one under "".
        let starts: HashMap<String, u64> = binding
            .interfaces
            .iter()
            .map(|entry| {
                let start = entry.config.get("start").map_or(Ok(0), |s| s.parse())?;
                Ok((entry.name.clone().unwrap_or_default(), start))
            })
            .collect::<Result<_, std::num::ParseIntError>>()?;
        let starts = Arc::new(starts);
        let made = self.states_made.clone();
        Ok(Some(StateFactory::new(move || {
            made.fetch_add(1, Ordering::SeqCst);
            TallyState {
                starts: starts.clone(),
            }
        })))
    }
}

fn entry(name: Option<&str>, start: &str) -> weft_runtime::InterfaceConfig {
    let mut entry = interface("weft:examples/tally@0.1.0", &[("start", start)]);
    entry.name = name.map(String::from);
    entry
}

#[tokio::test]
async fn a_plugin_from_outside_the_crate_serves_a_resource_per_named_entry() {
    let plugin = Arc::new(TallyPlugin::default());
    let t = TestHost::with(Options {
        plugins: vec![plugin.clone()],
        ..Options::default()
    })
    .await;
    let mut w = http_workload("tally", vec![component("tally", "tally-http")]);
    w.host_interfaces.extend([
        entry(None, "0"),
        entry(Some("a"), "10"),
        entry(Some("b"), "100"),
    ]);
    t.run(w).await;
    t.run(http_workload(
        "hello",
        vec![component("hello", "hello-http")],
    ))
    .await;

    assert_eq!(
        t.get("tally.test", "/?name=a").await,
        (200, "11 12 13\n".into())
    );
    assert_eq!(
        t.get("tally.test", "/?name=b").await,
        (200, "101 102 103\n".into())
    );
    assert_eq!(
        t.get("tally.test", "/?name=").await,
        (200, "1 2 3\n".into())
    );
    // State is per store: a new invocation starts afresh.
    assert_eq!(
        t.get("tally.test", "/?name=a").await,
        (200, "11 12 13\n".into())
    );
    assert_eq!(plugin.states_made.load(Ordering::SeqCst), 4);
    // The plugin is bound only where its interface is imported.
    assert_eq!(t.get("hello.test", "/").await.0, 200);
    assert_eq!(plugin.states_made.load(Ordering::SeqCst), 4);
    // A name no entry has: the guest traps, with the plugin's reason.
    let (status, body) = t.get("tally.test", "/?name=zzz").await;
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains("no weft:examples hostInterfaces entry is named \"zzz\""),
        "{body}"
    );
}

#[tokio::test]
async fn the_runtime_accepts_what_the_scheduler_places() {
    // The scheduler accepts an interface list that plugins serve together; so must the host.
    let t = TestHost::start().await;
    let mut w = http_workload("both", vec![component("fetch", "fetch-http")]);
    w.host_interfaces.push(interface(
        "wasi:http/incoming-handler,outgoing-handler@0.2.0",
        &[],
    ));
    w.host_interfaces.push(interface(
        "wasi:config/store,wasi-config-absent@0.2.0-draft",
        &[],
    ));
    let err = t
        .host
        .start_workload(w.clone())
        .await
        .unwrap_err()
        .to_chain();
    assert!(
        err.contains("no host plugin serves wasi:config/store,wasi-config-absent"),
        "{err}"
    );
    w.host_interfaces.pop();
    t.run(w).await;
}
