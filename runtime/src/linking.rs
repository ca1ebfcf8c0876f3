//! Links components of one workload: an import that a sibling exports is wired to that sibling.
//! Each call into a sibling is an invocation of the sibling, in a store of its own, with the
//! sibling's own limits and capabilities, so linking never widens what either component can do.
//! WASI 0.2 and 0.3 components link either way: the export is called as its component's world
//! says, and an `async func` import is a concurrent host function (the caller's other tasks go
//! on while it waits).

use std::sync::Arc;
use tracing::Instrument;

use wasmtime::AsContextMut;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, ComponentExportIndex, Linker, Val};
use weft_api::WitInterface;

use crate::component_info::ComponentInfo;
use crate::error::{Error, Result};
use crate::instance::ComponentRuntime;
use crate::store::Ctx;

/// For each component, the imports its siblings satisfy: `(import name, sibling index)`.
pub(crate) type Links = Vec<Vec<(String, usize)>>;

/// Finds sibling links and an order in which every provider is prepared before its consumers.
pub(crate) fn plan(names: &[&str], infos: &[&ComponentInfo]) -> Result<(Links, Vec<usize>)> {
    let links: Links = infos
        .iter()
        .enumerate()
        .map(|(i, info)| {
            info.imports
                .iter()
                .filter_map(|import| {
                    let provider = (0..infos.len())
                        .find(|&j| j != i && exports_match(&infos[j].exports, import).is_some())?;
                    Some((import.clone(), provider))
                })
                .collect()
        })
        .collect();

    // Depth-first topological sort; a grey node met again closes a cycle.
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    fn visit(
        i: usize,
        links: &Links,
        marks: &mut [Mark],
        stack: &mut Vec<usize>,
        order: &mut Vec<usize>,
        names: &[&str],
    ) -> Result<()> {
        match marks[i] {
            Mark::Done => return Ok(()),
            Mark::Active => {
                let start = stack.iter().position(|&s| s == i).unwrap_or(0);
                let mut cycle: Vec<String> = stack[start..]
                    .iter()
                    .map(|&s| names[s].to_string())
                    .collect();
                cycle.push(names[i].to_string());
                return Err(Error::ImportCycle { cycle });
            }
            Mark::New => {}
        }
        marks[i] = Mark::Active;
        stack.push(i);
        for (_, provider) in &links[i] {
            visit(*provider, links, marks, stack, order, names)?;
        }
        stack.pop();
        marks[i] = Mark::Done;
        order.push(i);
        Ok(())
    }

    let mut marks = vec![Mark::New; infos.len()];
    let mut order = Vec::with_capacity(infos.len());
    for i in 0..infos.len() {
        visit(i, &links, &mut marks, &mut Vec::new(), &mut order, names)?;
    }
    Ok((links, order))
}

/// The export among `exports` that satisfies `import` (versions compared as WIT semver).
pub(crate) fn exports_match<'a>(exports: &'a [String], import: &str) -> Option<&'a str> {
    let wanted = import.parse::<WitInterface>().ok();
    exports.iter().map(String::as_str).find(|export| {
        match (&wanted, export.parse::<WitInterface>()) {
            (Some(wanted), Ok(export)) => export.satisfies(wanted),
            _ => *export == import,
        }
    })
}

/// Defines every function of `import` in `linker` as a call into `provider`.
pub(crate) fn wire(
    linker: &mut Linker<Ctx>,
    consumer: &Component,
    consumer_name: &str,
    import: &str,
    provider: Arc<ComponentRuntime>,
) -> Result<()> {
    let err = |reason: String| Error::Link {
        component: consumer_name.to_string(),
        interface: import.to_string(),
        source: wasmtime::Error::msg(reason),
    };
    let engine = consumer.engine();
    let Some(ComponentItem::ComponentInstance(instance)) = consumer
        .component_type()
        .imports(engine)
        .find(|(name, _)| *name == import)
        .map(|(_, item)| item.ty)
    else {
        return Err(err("only whole interfaces can be linked".into()));
    };
    let provided = provider.instance_pre().component();
    let export = exports_match(&provider.info.exports, import)
        .and_then(|name| provided.get_export_index(None, name))
        .ok_or_else(|| {
            err(format!(
                "{} does not export it",
                provider.identity.component
            ))
        })?;

    let mut root = linker.instance(import).map_err(|e| err(format!("{e:#}")))?;
    for (name, item) in instance.exports(engine) {
        match item.ty {
            ComponentItem::ComponentFunc(func) => {
                let index = provided
                    .get_export_index(Some(&export), name)
                    .ok_or_else(|| {
                        err(format!(
                            "{} does not export function {name}",
                            provider.identity.component
                        ))
                    })?;
                let provider = provider.clone();
                // An `async func` import lets the caller's other tasks go on while it waits; a
                // plain one blocks its caller, as the component model says.
                let defined = if func.async_() {
                    root.func_new_concurrent(name, move |_accessor, _ty, params, results| {
                        let provider = provider.clone();
                        Box::pin(async move { call(provider, index, params, results).await })
                    })
                } else {
                    root.func_new_async(name, move |_store, _ty, params, results| {
                        let provider = provider.clone();
                        Box::new(async move { call(provider, index, params, results).await })
                    })
                };
                defined.map_err(|e| err(format!("{e:#}")))?;
            }
            ComponentItem::Type(_) => {}
            ComponentItem::Resource(_) => {
                return Err(err(
                    "interfaces with resources cannot be linked between components".into(),
                ));
            }
            _ => return Err(err(format!("cannot link {name}: not a function"))),
        }
    }
    Ok(())
}

/// A call into the sibling: one invocation of it, through the same path as any other, so the
/// provider's `maxConcurrency`, timeout, memory limit and metrics all apply. It runs in a task of
/// its own: a store's event loop cannot run inside another's (Wasmtime forbids nesting them).
async fn call(
    provider: Arc<ComponentRuntime>,
    index: ComponentExportIndex,
    params: &[Val],
    results: &mut [Val],
) -> wasmtime::Result<()> {
    let params = params.to_vec();
    let count = results.len();
    let name = provider.identity.component.clone();
    // In the caller's span: a linked call is part of the caller's trace.
    let task = tokio::spawn(
        async move {
            provider
                .invoke("linked call", move |guest| {
                    Box::pin(async move {
                        let func = guest
                            .accessor
                            .with(|mut access| guest.instance.get_func(&mut access, index))
                            .ok_or_else(|| wasmtime::format_err!("linked function vanished"))?;
                        let mut values = vec![Val::Bool(false); count];
                        let call = guest.accessor.with(|mut access| {
                            func.start_call_concurrent(
                                access.as_context_mut(),
                                &params,
                                &mut values,
                            )
                        })?;
                        guest.track(call.task());
                        func.finish_call_concurrent(guest.accessor, call).await?;
                        Ok(values)
                    })
                })
                .await
        }
        .in_current_span(),
    );
    // The caller going away (its own deadline, say) ends the linked call too.
    let mut task = AbortOnDrop(task);
    let values = (&mut task.0)
        .await
        .map_err(|e| wasmtime::format_err!("linked call to {name} failed: {e}"))?
        .map_err(|failure| wasmtime::format_err!("linked call to {name} failed: {failure}"))?;
    results.clone_from_slice(&values);
    Ok(())
}

struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(imports: &[&str], exports: &[&str]) -> ComponentInfo {
        ComponentInfo {
            concurrent: false,
            digest: String::new(),
            imports: imports.iter().map(|s| s.to_string()).collect(),
            exports: exports.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn orders_providers_first() {
        let a = info(
            &["weft:examples/greet@0.1.0"],
            &["wasi:http/incoming-handler@0.2.0"],
        );
        let b = info(&[], &["weft:examples/greet@0.1.0"]);
        let (links, order) = plan(&["a", "b"], &[&a, &b]).unwrap();
        assert_eq!(links[0], vec![("weft:examples/greet@0.1.0".to_string(), 1)]);
        assert_eq!(order, vec![1, 0]);
    }

    #[test]
    fn refuses_cycles_naming_them() {
        let a = info(&["x:y/b"], &["x:y/a"]);
        let b = info(&["x:y/a"], &["x:y/b"]);
        let err = plan(&["a", "b"], &[&a, &b]).unwrap_err().to_string();
        assert!(err.contains("a -> b -> a"), "{err}");
    }
}
