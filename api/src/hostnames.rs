//! The HTTP host names a Workload answers to, and which names its namespace may claim. One rule,
//! shared by the operator (which admits claims cluster-wide before placing a Workload) and the
//! host-agent (which routes exactly these names).

use std::collections::BTreeMap;

/// `Example.COM:8080` → `example.com`: how a Host header or a claimed name is compared.
pub fn normalize(host: &str) -> String {
    let host = if host.starts_with('[') {
        host.split_inclusive(']').next().unwrap_or(host)
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// Suffixes of a Kubernetes Service's DNS names after `<service>.<namespace>`.
#[cfg(feature = "crd")]
const SERVICE_SUFFIXES: [&str; 3] = ["", ".svc", ".svc.cluster.local"];

#[cfg(feature = "crd")]
impl crate::WorkloadSpec {
    /// Every name the Workload's HTTP answers to, normalized: its `wasi:http` config `host`
    /// (comma-separated), then the namespace-qualified DNS names of its Kubernetes Service
    /// (`web.shop`, `web.shop.svc`, `web.shop.svc.cluster.local`). The bare Service name is
    /// not among them: it would be the same name in every namespace.
    pub fn http_hosts(&self, namespace: &str) -> Vec<String> {
        let mut hosts: Vec<String> = self
            .host_interfaces
            .iter()
            .filter(|i| i.namespace == "wasi" && i.package == "http")
            .filter_map(|i| i.config.get("host"))
            .flat_map(|hosts| hosts.split(','))
            .map(normalize)
            .filter(|h| !h.is_empty())
            .collect();
        if let Some(service) = self.kubernetes.as_ref().and_then(|k| k.service.as_ref()) {
            for suffix in SERVICE_SUFFIXES {
                hosts.push(normalize(&format!("{}.{namespace}{suffix}", service.name)));
            }
        }
        let mut seen = std::collections::HashSet::new();
        hosts.retain(|h| seen.insert(h.clone()));
        hosts
    }
}

/// Most HTTP host names one Workload may claim (its Service's DNS names included): admitting a
/// claim costs the operator a lookup per name.
pub const MAX_HTTP_HOSTS: usize = 32;

/// A grant that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("invalid host name grant {grant:?}: {why} (expected NAMESPACE=SUFFIX[,SUFFIX…])")]
pub struct GrantError {
    grant: String,
    why: &'static str,
}

/// Which host names each namespace may claim. Every namespace may claim names under its own
/// name (`web.shop` in `shop`) and its Services' DNS names; a cluster admin grants more as
/// DNS suffixes per namespace (`shop=shop.example.com` lets `shop` claim `shop.example.com`
/// and `*.shop.example.com`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostnameGrants {
    suffixes: BTreeMap<String, Vec<String>>,
}

impl HostnameGrants {
    /// Reads grants of the form `NAMESPACE=SUFFIX[,SUFFIX…]`.
    pub fn parse<S: AsRef<str>>(grants: &[S]) -> Result<Self, GrantError> {
        let mut parsed = Self::default();
        for grant in grants {
            let grant = grant.as_ref();
            let error = |why| GrantError {
                grant: grant.to_owned(),
                why,
            };
            let (namespace, suffixes) = grant.split_once('=').ok_or_else(|| error("no '='"))?;
            if namespace.is_empty() {
                return Err(error("no namespace"));
            }
            for suffix in suffixes.split(',') {
                let suffix = normalize(suffix.trim().trim_start_matches("*."));
                if suffix.is_empty() || suffix.split('.').any(str::is_empty) {
                    return Err(error("an empty suffix or label"));
                }
                parsed
                    .suffixes
                    .entry(namespace.to_owned())
                    .or_default()
                    .push(suffix);
            }
        }
        Ok(parsed)
    }

    /// Why `namespace` may not claim `host` (normalized), or `None` when it may.
    pub fn refusal(&self, namespace: &str, host: &str) -> Option<String> {
        let granted = self
            .suffixes
            .get(namespace)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        if granted.iter().any(|s| under(host, s)) {
            return None;
        }
        // A granted suffix belongs to its grantee: a namespace named `com` may not claim
        // `shop.example.com` by its own name when `shop` was granted `example.com`.
        let reserved = self.suffixes.iter().find_map(|(grantee, suffixes)| {
            (grantee != namespace)
                .then(|| suffixes.iter().find(|s| under(host, s)))
                .flatten()
                .map(|suffix| (grantee, suffix))
        });
        if let Some((grantee, suffix)) = reserved {
            return Some(format!(
                "namespace {namespace} may not claim host {host}: {suffix} is granted to \
                 namespace {grantee}"
            ));
        }
        if own_name(namespace, host) {
            return None;
        }
        let mut allowed = format!("names under .{namespace}");
        for suffix in granted {
            allowed.push_str(&format!(", {suffix} and names under it"));
        }
        Some(format!(
            "namespace {namespace} may not claim host {host}: it may claim {allowed} (a cluster \
             admin grants more with the chart value operator.hostnames)"
        ))
    }
}

/// Whether `host` is `suffix` or a name under it.
fn under(host: &str, suffix: &str) -> bool {
    host == suffix
        || host
            .strip_suffix(suffix)
            .is_some_and(|rest| rest.len() > 1 && rest.ends_with('.'))
}

/// Whether `host` belongs to `namespace` by name: `<name>.<namespace>` (any labels before), or a
/// Service DNS name `<service>.<namespace>.svc[.cluster.local]` of exactly that namespace.
fn own_name(namespace: &str, host: &str) -> bool {
    for service_suffix in [".svc.cluster.local", ".svc"] {
        if let Some(rest) = host.strip_suffix(service_suffix) {
            return rest
                .split_once('.')
                .is_some_and(|(service, ns)| !service.is_empty() && ns == namespace);
        }
    }
    under(host, namespace) && host != namespace
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(list: &[&str]) -> HostnameGrants {
        HostnameGrants::parse(list).unwrap()
    }

    #[test]
    fn a_namespace_claims_names_under_its_own_name_and_its_service_names() {
        let none = HostnameGrants::default();
        for host in [
            "web.shop",
            "a.b.shop",
            "web.shop.svc",
            "web.shop.svc.cluster.local",
        ] {
            assert_eq!(none.refusal("shop", host), None, "{host}");
        }
        for host in [
            "shop",
            "web.other",
            "shop.example.com",
            "webshop",
            "web.other.svc.cluster.local",
            "web.x.shop.svc",
        ] {
            assert!(none.refusal("shop", host).is_some(), "{host}");
        }
        // A namespace called `local` or `svc` does not get other namespaces' Service names.
        assert!(
            none.refusal("local", "web.shop.svc.cluster.local")
                .is_some()
        );
        assert!(none.refusal("svc", "web.shop.svc").is_some());
    }

    #[test]
    fn granted_suffixes_cover_the_name_and_names_under_it() {
        let g = grants(&["shop=shop.example.com,*.Shop.Test", "default=localhost"]);
        for (ns, host) in [
            ("shop", "shop.example.com"),
            ("shop", "api.shop.example.com"),
            ("shop", "a.shop.test"),
            ("default", "hello.localhost"),
        ] {
            assert_eq!(g.refusal(ns, host), None, "{ns} {host}");
        }
        let refused = g.refusal("other", "hello.example.org").unwrap();
        assert!(refused.contains("operator.hostnames"), "{refused}");
        assert!(g.refusal("shop", "evilshop.example.com").is_some());
        assert!(g.refusal("shop", "example.com").is_some());
    }

    #[test]
    fn a_granted_suffix_is_not_claimed_by_a_namespace_named_like_its_tail() {
        let g = grants(&["shop=shop.example.com", "default=localhost"]);
        // Namespaces called `com` and `localhost` own `*.com` and `*.localhost` by name...
        assert_eq!(g.refusal("com", "blog.other.com"), None);
        // ...but not what was granted to another namespace under them.
        for (ns, host) in [
            ("com", "shop.example.com"),
            ("com", "api.shop.example.com"),
            ("localhost", "hello.localhost"),
        ] {
            let refused = g.refusal(ns, host).unwrap();
            assert!(refused.contains("is granted to namespace"), "{refused}");
        }
        assert_eq!(g.refusal("shop", "api.shop.example.com"), None);
    }

    #[test]
    fn bad_grants_are_refused() {
        for bad in ["shop", "=a.com", "shop=", "shop=a..com", "shop=a.com,"] {
            assert!(HostnameGrants::parse(&[bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn normalize_drops_port_case_and_trailing_dot() {
        assert_eq!(normalize("Example.COM:8080"), "example.com");
        assert_eq!(normalize("example.com."), "example.com");
        assert_eq!(normalize("[::1]:80"), "[::1]");
    }
}
