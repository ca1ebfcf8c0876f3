//! Logging to stderr: human-readable by default (coloured only on a terminal), JSON with
//! `--log-format json`; `RUST_LOG` filters. Traces and logs go to an OTLP collector when the
//! standard OpenTelemetry variables name one (`OTEL_EXPORTER_OTLP_ENDPOINT`, or the per-signal
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`; headers, timeouts,
//! `OTEL_TRACES_SAMPLER`, `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` as the
//! specification says; off when none is set, when `OTEL_SDK_DISABLED=true`, or per signal with
//! `OTEL_TRACES_EXPORTER=none` / `OTEL_LOGS_EXPORTER=none`), with the W3C trace context
//! propagated. An exported log record carries the trace and span it was written in.

use std::io::IsTerminal;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;
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

/// What must outlive the daemon's work: the exporters, flushed when dropped.
pub struct Telemetry {
    traces: Option<SdkTracerProvider>,
    logs: Option<SdkLoggerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.traces.take()
            && let Err(err) = provider.shutdown()
        {
            eprintln!("flushing traces: {err}");
        }
        if let Some(provider) = self.logs.take()
            && let Err(err) = provider.shutdown()
        {
            eprintln!("flushing logs: {err}");
        }
    }
}

/// A layer that shows some targets' events in a view of its own (`host-agent dev`'s terminal)
/// instead of the log on stderr, whatever `RUST_LOG` says of them.
pub struct View {
    pub layer: Box<dyn Layer<Registry> + Send + Sync>,
    /// The targets it shows and the most detailed level of each it wants.
    pub targets: &'static [(&'static str, tracing::Level)],
}

impl LogArgs {
    /// Installs the global subscriber for `service` (the default `service.name`);
    /// `default_filter` applies when `RUST_LOG` is unset. Keep the result until exit.
    pub fn init(self, service: &'static str, default_filter: &str) -> Telemetry {
        self.init_with_view(service, default_filter, None)
    }

    /// [`LogArgs::init`], with `view` showing its targets' events in place of stderr.
    pub fn init_with_view(
        self,
        service: &'static str,
        default_filter: &str,
        view: Option<View>,
    ) -> Telemetry {
        let mut filter =
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
        let fmt = tracing_subscriber::fmt::layer()
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr);
        let fmt: Box<dyn Layer<Registry> + Send + Sync> = match self.log_format {
            LogFormat::Text => fmt.boxed(),
            LogFormat::Json => fmt.json().flatten_event(true).boxed(),
        };
        let mut layers = Vec::new();
        match view {
            None => layers.push(fmt),
            Some(view) => {
                for (target, level) in view.targets {
                    filter = filter.add_directive(
                        format!("{target}={level}")
                            .parse()
                            .expect("a view's target is a valid directive"),
                    );
                }
                let shown = view.targets;
                let rest = tracing_subscriber::filter::filter_fn(move |meta| {
                    !shown.iter().any(|(target, _)| meta.target() == *target)
                });
                layers.push(fmt.with_filter(rest).boxed());
                layers.push(view.layer);
            }
        }
        let mut errors = Vec::new();
        let traces = tracer_provider(service).unwrap_or_else(|err| {
            errors.push(("traces", err));
            None
        });
        let logs = logger_provider(service).unwrap_or_else(|err| {
            errors.push(("logs", err));
            None
        });
        let otel_traces = traces
            .as_ref()
            .map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer("weft")));
        // The exporter's own HTTP client logs through `tracing` too: exporting those would
        // feed the exporter its own output.
        let otel_logs = logs.as_ref().map(|provider| {
            OpenTelemetryTracingBridge::new(provider).with_filter(
                tracing_subscriber::filter::filter_fn(|meta| {
                    let target = meta.target();
                    !["opentelemetry", "reqwest", "hyper", "h2"]
                        .iter()
                        .any(|own| target.starts_with(own))
                }),
            )
        });
        tracing_subscriber::registry()
            .with(layers)
            .with(otel_traces)
            .with(otel_logs)
            .with(filter)
            .init();
        for (signal, err) in errors {
            tracing::warn!(%err, "{signal} are not exported");
        }
        Telemetry { traces, logs }
    }
}

/// Whether the environment asks for `signal` (`TRACES`, `LOGS`): an OTLP endpoint is set for
/// it, its exporter is not `none` and the SDK is not disabled.
fn wanted(signal: &str) -> bool {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"))
        || std::env::var(format!("OTEL_{signal}_EXPORTER"))
            .is_ok_and(|v| v.eq_ignore_ascii_case("none"));
    !disabled
        && (set("OTEL_EXPORTER_OTLP_ENDPOINT")
            || set(&format!("OTEL_EXPORTER_OTLP_{signal}_ENDPOINT")))
}

/// The daemon's resource: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, read by the builder,
/// win over the default name.
fn resource(service: &'static str) -> Resource {
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(service);
    }
    resource.build()
}

/// The OTLP span exporter the environment describes (HTTP/protobuf, batched on a thread of its
/// own), installed as the global provider with the W3C propagator; `None` when not wanted.
fn tracer_provider(
    service: &'static str,
) -> Result<Option<SdkTracerProvider>, opentelemetry_otlp::ExporterBuildError> {
    if !wanted("TRACES") {
        return Ok(None);
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource(service))
        .build();
    opentelemetry::global::set_tracer_provider(provider.clone());
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    Ok(Some(provider))
}

/// The OTLP log exporter the environment describes, batched like spans; `None` when not
/// wanted.
fn logger_provider(
    service: &'static str,
) -> Result<Option<SdkLoggerProvider>, opentelemetry_otlp::ExporterBuildError> {
    if !wanted("LOGS") {
        return Ok(None);
    }
    let exporter = opentelemetry_otlp::LogExporter::builder()
        .with_http()
        .build()?;
    Ok(Some(
        SdkLoggerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource(service))
            .build(),
    ))
}
