//! Regular expressions the CRD schemas use to validate string fields (Go RE2 syntax, which the
//! API server evaluates). Kept in one place so the Rust-side parsers and the schema agree.

/// A DNS-1123 label: what Kubernetes accepts as a Service or container name (max 63 characters,
/// checked with `maxLength`).
pub const DNS_LABEL: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

/// A DNS-1035 label: what Kubernetes accepts as a Service name (starts with a letter).
pub const DNS_1035_LABEL: &str = "^[a-z]([-a-z0-9]*[a-z0-9])?$";

/// A DNS-1123 subdomain: what Kubernetes accepts as the name of most objects, such as Secrets
/// (max 253 characters, checked with `maxLength`).
pub const DNS_SUBDOMAIN: &str =
    "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

/// A WIT identifier, as [`crate::wit::is_wit_identifier`] accepts: kebab-case words, the first
/// starting with a letter, each all lower-case or all upper-case.
pub const WIT_IDENTIFIER: &str = "^([a-z][a-z0-9]*|[A-Z][A-Z0-9]*)(-([a-z0-9]+|[A-Z0-9]+))*$";

/// A semantic version (semver.org's own expression), as `semver::Version` parses.
pub const SEMVER: &str = r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-((0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)(\.(0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*))*))?(\+[0-9a-zA-Z-]+(\.[0-9a-zA-Z-]+)*)?$";

/// A non-negative Kubernetes quantity in bytes: `67108864`, `64Mi`, `1.5Gi`, `128M`, `1e9`.
/// [`crate::quantity::parse_memory`] accepts exactly these.
pub const MEMORY_QUANTITY: &str = r"^([0-9]+(\.[0-9]*)?|\.[0-9]+)([KMGTPE]i|[kMGTPE]|[eE][0-9]+)?$";

/// A Go-style duration without sign: `500ms`, `30s`, `1m30s`, `1.5h`.
pub const DURATION: &str = r"^(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+$";

/// An absolute path.
pub const ABSOLUTE_PATH: &str = "^/";

/// An environment variable name: any printable characters except `=`.
pub const ENV_VAR_NAME: &str = "^[^=]+$";

/// A key of a ConfigMap or Secret, as Kubernetes allows them.
pub const CONFIG_KEY: &str = r"^[-._a-zA-Z0-9]+$";
