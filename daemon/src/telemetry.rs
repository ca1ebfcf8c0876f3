//! Logging to stderr: human-readable by default (coloured only on a terminal), JSON with
//! `--log-format json`; `RUST_LOG` filters. Traces go to an OTLP collector when the standard
//! OpenTelemetry variables name one (`OTEL_EXPORTER_OTLP_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`; headers, timeouts, `OTEL_TRACES_SAMPLER`,
//! `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` as the specification says; off when
//! none is set or `OTEL_SDK_DISABLED=true`), with the W3C trace context propagated.

use std::io::IsTerminal;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The daemons' logging flag, for every subcommand.
#[derive(Clone, Copy, Debug, clap::Args)]
pub struct LogArgs {
    #[arg(
        long,
        value_enum,
        default_value = "text",
        global = true,
        env = "WEFT_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
}

/// What must outlive the daemon's work: the trace exporter, flushed when dropped.
pub struct Telemetry {
    traces: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.traces.take()
            && let Err(err) = provider.shutdown()
        {
            eprintln!("flushing traces: {err}");
        }
    }
}

impl LogArgs {
    /// Installs the global subscriber for `service` (the default `service.name`);
    /// `default_filter` applies when `RUST_LOG` is unset. Keep the result until exit.
    pub fn init(self, service: &'static str, default_filter: &str) -> Telemetry {
        let filter =
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
        let fmt = tracing_subscriber::fmt::layer()
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr);
        let fmt: Box<dyn Layer<Registry> + Send + Sync> = match self.log_format {
            LogFormat::Text => fmt.boxed(),
            LogFormat::Json => fmt.json().flatten_event(true).boxed(),
        };
        let (traces, exporter_error) = match tracer_provider(service) {
            Ok(provider) => (provider, None),
            Err(err) => (None, Some(err)),
        };
        let otel = traces
            .as_ref()
            .map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer("weft")));
        tracing_subscriber::registry()
            .with(fmt)
            .with(otel)
            .with(filter)
            .init();
        if let Some(err) = exporter_error {
            tracing::warn!(%err, "traces are not exported");
        }
        Telemetry { traces }
    }
}

/// Whether the environment asks for traces: an OTLP endpoint is set and the SDK not disabled.
fn traces_wanted() -> bool {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"))
        || std::env::var("OTEL_TRACES_EXPORTER").is_ok_and(|v| v.eq_ignore_ascii_case("none"));
    !disabled && (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
}

/// The OTLP exporter the environment describes (HTTP/protobuf, batched on a thread of its
/// own), installed as the global provider with the W3C propagator; `None` when not wanted.
fn tracer_provider(
    service: &'static str,
) -> Result<Option<SdkTracerProvider>, opentelemetry_otlp::ExporterBuildError> {
    if !traces_wanted() {
        return Ok(None);
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()?;
    // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, read by the builder, win over the default.
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(service);
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    opentelemetry::global::set_tracer_provider(provider.clone());
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    Ok(Some(provider))
}
