//! Instance templates: a component's code linked to the host functions of the plugins bound to
//! it, ready to instantiate. Every component of one digest bound to the same plugins shares one,
//! whichever workload runs it, since plugins link from the component's imports alone; a
//! component importing from a sibling has its own, as those links are its workload's.

use std::sync::Arc;

use wasmtime::component::{InstancePre, Linker};

use crate::engine::{Code, Tier};
use crate::error::{Error, Result};
use crate::plugin::HostPlugin;
use crate::shared::Shared;
use crate::store::Ctx;
use crate::workload::plugin_error;

pub struct Template {
    pub(crate) pre: InstancePre<Ctx>,
    /// Keeps the code shared by digest while any template of it lives.
    pub(crate) code: Arc<Code>,
}

/// Templates by (digest, tier of its code, ids of the bound plugins in the host's order).
pub(crate) type Templates = Shared<(String, Tier, Vec<&'static str>), Template>;

impl Template {
    /// Links `code` to `plugins`, then whatever `extra` adds (a sibling's exports).
    /// The linker is the code's engine's: baseline and optimized code each link to their own.
    pub(crate) fn link(
        component: &str,
        code: &Arc<Code>,
        plugins: &[&Arc<dyn HostPlugin>],
        extra: impl FnOnce(&mut Linker<Ctx>) -> Result<()>,
    ) -> Result<Self> {
        let mut linker = Linker::<Ctx>::new(code.component.engine());
        for plugin in plugins {
            plugin
                .add_to_linker(&mut linker, &code.info)
                .map_err(|e| plugin_error(plugin.as_ref(), e))?;
        }
        extra(&mut linker)?;
        let pre = linker
            .instantiate_pre(&code.component)
            .map_err(|source| Error::Link {
                component: component.to_string(),
                interface: "*".into(),
                source,
            })?;
        Ok(Self {
            pre,
            code: code.clone(),
        })
    }
}
