//! Whether a Host can keep its Workloads: from the caches, and confirmed from the API server
//! before anything moves (the caches may lag a Host's recovery). A confirmation holds while the
//! cached Host and Lease are unchanged, so a Host that failed with 2,500 Workloads is read once,
//! not 2,500 times in a row.

use std::collections::HashMap;
use std::sync::Mutex;

use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::reflector::ObjectRef;
use weft_api::Host;

use crate::assignments::Load;
use crate::context::Context;
use crate::error::Error;
use crate::scheduler::Candidate;

/// Hosts the API server confirmed cannot keep their Workloads, with the versions of the cached
/// Host and Lease at the time.
#[derive(Default)]
pub struct Confirmed {
    unhealthy: Mutex<HashMap<String, (Versions, String)>>,
}

type Versions = (Option<String>, Option<String>);

/// Why `host` cannot keep Workloads according to the caches, if it cannot.
pub fn cached(ctx: &Context, host: &str) -> Option<String> {
    match ctx.caches.hosts.get(&ObjectRef::new(host)) {
        None => Some("is gone".to_owned()),
        Some(cached) => Candidate::new(&cached, ctx.host_lease_state(host), Load::default())
            .health_refusal()
            .map(|refusal| refusal.to_string()),
    }
}

/// The same as [`cached`], read from the API server (or from its last answer, if the cached
/// Host and Lease have not changed since).
pub async fn fresh(ctx: &Context, host: &str) -> Result<Option<String>, Error> {
    let versions: Versions = (
        ctx.caches
            .hosts
            .get(&ObjectRef::new(host))
            .and_then(|h| h.resource_version()),
        ctx.host_lease(host).and_then(|l| l.resource_version()),
    );
    if let Some(why) = ctx.confirmed.lookup(host, &versions) {
        return Ok(Some(why));
    }
    let hosts: Api<Host> = Api::all(ctx.client.clone());
    let why = match hosts
        .get_opt(host)
        .await
        .map_err(Error::kube(format!("reading Host {host}")))?
    {
        None => Some("is gone".to_owned()),
        Some(fresh) => {
            let lease = ctx.fresh_host_lease_state(host).await?;
            Candidate::new(&fresh, lease, Load::default())
                .health_refusal()
                .map(|refusal| refusal.to_string())
        }
    };
    ctx.confirmed.store(host, versions, why.clone());
    Ok(why)
}

impl Confirmed {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Versions, String)>> {
        // Nothing in here panics while holding the lock; a poisoned one is still consistent.
        self.unhealthy.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lookup(&self, host: &str, versions: &Versions) -> Option<String> {
        (self.lock().get(host))
            .filter(|(seen, _)| seen == versions)
            .map(|(_, why)| why.clone())
    }

    fn store(&self, host: &str, versions: Versions, why: Option<String>) {
        let mut unhealthy = self.lock();
        match why {
            Some(why) => unhealthy.insert(host.to_owned(), (versions, why)),
            None => unhealthy.remove(host),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_confirmation_holds_while_the_cache_is_unchanged() {
        let confirmed = Confirmed::default();
        let v1: Versions = (Some("1".into()), Some("7".into()));
        confirmed.store("h", v1.clone(), Some("is not Ready".into()));
        assert_eq!(confirmed.lookup("h", &v1).as_deref(), Some("is not Ready"));
        // The Lease renewed (or the Host changed): ask the API server again.
        assert_eq!(
            confirmed.lookup("h", &(Some("1".into()), Some("8".into()))),
            None
        );
        assert_eq!(confirmed.lookup("other", &v1), None);
        // Found healthy: forgotten.
        confirmed.store("h", v1.clone(), None);
        assert_eq!(confirmed.lookup("h", &v1), None);
    }
}
