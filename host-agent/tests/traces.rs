//! Traces end to end: `host-agent run` exporting OTLP to a real Jaeger, configured only by the
//! standard OpenTelemetry variables. A request with a W3C `traceparent` through a component
//! that calls another over outgoing HTTP is one trace, asked back from Jaeger's query API:
//! the client's span is the parent of the request's, each invocation is a span under its
//! request with its workload, component, outcome and instance, and the outgoing request
//! carries the context to the second Workload. Key-value and messaging calls are spans of
//! their invocation, and a message carries the context in its headers, through a real NATS
//! server, to the Workload that handles it.

mod common;

use std::collections::HashMap;

use common::{agent, curl, examples};
use serde_json::Value;
use weft_e2e::JaegerServer;

/// Each span's parent, by span id.
fn parents(spans: &[Value]) -> HashMap<String, String> {
    spans
        .iter()
        .filter_map(|s| {
            let reference = s["references"].as_array()?.first()?;
            Some((
                s["spanID"].as_str()?.to_owned(),
                reference["spanID"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

/// The span named `name` (the first if several).
fn named<'a>(spans: &'a [Value], name: &str) -> &'a Value {
    spans
        .iter()
        .find(|s| s["operationName"] == name)
        .unwrap_or_else(|| panic!("no span {name} in {spans:#?}"))
}

fn id(span: &Value) -> String {
    span["spanID"].as_str().unwrap().to_owned()
}

/// Whether `ancestor` is above `span` in its trace.
fn descends(parents: &HashMap<String, String>, span: &Value, ancestor: &Value) -> bool {
    let mut at = id(span);
    while let Some(parent) = parents.get(&at) {
        if *parent == id(ancestor) {
            return true;
        }
        at = parent.clone();
    }
    false
}

/// The value of tag `key` of a Jaeger span.
fn tag<'a>(span: &'a Value, key: &str) -> Option<&'a str> {
    span["tags"].as_array()?.iter().find(|t| t["key"] == key)?["value"].as_str()
}

#[test]
fn a_request_with_a_traceparent_is_one_trace_across_workloads() {
    let jaeger = JaegerServer::start();
    let dir = tempfile::tempdir().unwrap();
    // hello answers the Host header fetch's outgoing request carries: 127.0.0.1.
    let hello = dir.path().join("hello.yaml");
    std::fs::write(
        &hello,
        std::fs::read_to_string(examples().join("hello-http.yaml"))
            .unwrap()
            .replace("host: hello.localhost", "host: 127.0.0.1")
            .replace("build/", &format!("{}/build/", examples().display())),
    )
    .unwrap();
    let running = agent()
        .manifest(examples().join("fetch-http.yaml"))
        .manifest(&hello)
        .manifest(examples().join("config-http.yaml"))
        .arg("--egress-allow")
        .arg("127.0.0.1/32")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &jaeger.otlp)
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env("OTEL_BLRP_SCHEDULE_DELAY", "100")
        .start();

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let client_span = "00f067aa0ba902b7";
    let body = curl(&[
        "-sf",
        "-H",
        "Host: fetch.localhost",
        "-H",
        &format!("traceparent: 00-{trace_id}-{client_span}-01"),
        &format!("http://{}/?url=http://{}/", running.http, running.http),
    ]);
    assert_eq!(body, "Hello from Weft!\n");

    let spans = jaeger.trace(trace_id, 4);
    let parent = parents(&spans);
    let named = |name: &str| named(&spans, name);
    let fetch = named("fetch wasi:http/incoming-handler.handle");
    let hello = named("hello wasi:http/incoming-handler.handle");
    // client -> GET (fetch's request) -> fetch's invocation -> GET (hello's) -> hello's.
    let fetch_request = &parent[&id(fetch)];
    assert_eq!(parent[fetch_request], client_span, "{spans:#?}");
    let hello_request = &parent[&id(hello)];
    assert_eq!(parent[hello_request], id(fetch), "{spans:#?}");
    for (span, workload) in [(fetch, "default/fetch"), (hello, "default/hello")] {
        assert_eq!(tag(span, "workload"), Some(workload), "{span:#}");
        assert_eq!(tag(span, "outcome"), Some("ok"), "{span:#}");
        assert_eq!(tag(span, "instance"), Some("fresh"), "{span:#}");
    }
    // Each Workload's launch is a trace of its own: pull, then compile and start.
    weft_e2e::process::wait_until(
        "hello's launch in jaeger",
        std::time::Duration::from_secs(30),
        || {
            let Some(found) =
                jaeger.get("/api/traces?service=weft-host-agent&operation=launch&limit=20")
            else {
                return false;
            };
            found["data"].as_array().into_iter().flatten().any(|trace| {
                let spans = trace["spans"].as_array().cloned().unwrap_or_default();
                let has = |name: &str| spans.iter().any(|s| s["operationName"] == name);
                spans.iter().any(|s| {
                    s["operationName"] == "launch" && tag(s, "workload") == Some("default/hello")
                }) && has("pull")
                    && has("compile and start")
            })
        },
    );
    // A guest's wasi:logging line is attributed to its workload and component and carries the
    // id of the trace its request is part of.
    let trace_id = "7bf92f3577b34da6a3ce929d0e0e4739";
    curl(&[
        "-sf",
        "-H",
        "Host: config.localhost",
        "-H",
        &format!("traceparent: 00-{trace_id}-00f067aa0ba902ba-01"),
        &format!("http://{}/", running.http),
    ]);
    weft_e2e::process::wait_until(
        "the guest's log line with its trace id",
        std::time::Duration::from_secs(10),
        || {
            running.logs().lines().any(|line| {
                line.contains("served greeting")
                    && line.contains(&format!("trace_id={trace_id}"))
                    && line.contains("workload=default/config")
                    && line.contains("component=config")
            })
        },
    );
    // The same line reaches the collector as an OTLP log record of that trace.
    weft_e2e::process::wait_until(
        "the guest's log record in the collector",
        std::time::Duration::from_secs(10),
        || {
            jaeger.logs().split("LogRecord #").any(|record| {
                record.contains("served greeting")
                    && record.contains(&format!("Trace ID: {trace_id}"))
                    && record.contains("default/config")
            })
        },
    );
    let services = jaeger.get("/api/services").unwrap();
    assert!(
        services["data"]
            .as_array()
            .unwrap()
            .contains(&Value::from("weft-host-agent")),
        "{services}"
    );
}

#[test]
fn keyvalue_and_messaging_calls_are_spans_and_a_request_reply_is_one_trace() {
    let jaeger = JaegerServer::start();
    let dir = tempfile::tempdir().unwrap();
    let build = examples().join("build");
    // The publisher and the echo are two Workloads of one namespace: the request reaches the
    // echo only through a real NATS server, and the context only in the message's headers.
    let nats = weft_e2e::NatsServer::start();
    let manifests = format!(
        r#"apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {{name: publisher, namespace: default}}
spec:
  components: [{{name: publisher, image: {build}/msg-publisher-http.wasm}}]
  hostInterfaces:
    - {{namespace: wasi, package: http, interfaces: [incoming-handler], version: 0.2.0, config: {{host: publisher.localhost}}}}
    - {{namespace: wasmcloud, package: messaging, interfaces: [consumer], version: 0.2.0, config: {{backend: nats}}}}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {{name: echo, namespace: default}}
spec:
  components: [{{name: echo, image: {build}/msg-echo.wasm}}]
  hostInterfaces:
    - {{namespace: wasmcloud, package: messaging, interfaces: [consumer, handler], version: 0.2.0, config: {{backend: nats, subscriptions: echo.>}}}}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {{name: counter, namespace: default}}
spec:
  components: [{{name: counter, image: {build}/kv-counter-http.wasm}}]
  hostInterfaces:
    - {{namespace: wasi, package: http, interfaces: [incoming-handler], version: 0.2.0, config: {{host: counter.localhost}}}}
    - {{namespace: wasi, package: keyvalue, interfaces: [store, atomics], version: 0.2.0-draft}}
"#,
        build = build.display()
    );
    let manifest = dir.path().join("workloads.yaml");
    std::fs::write(&manifest, manifests).unwrap();
    let running = agent()
        .manifest(&manifest)
        .arg(format!("--nats-url={}", nats.url()))
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &jaeger.otlp)
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .start();

    let trace_id = "5bf92f3577b34da6a3ce929d0e0e4737";
    let body = curl(&[
        "-sf",
        "-X",
        "POST",
        "-H",
        "Host: publisher.localhost",
        "-H",
        &format!("traceparent: 00-{trace_id}-00f067aa0ba902b8-01"),
        "--data",
        "ping",
        &format!("http://{}/request/echo.hi", running.http),
    ]);
    assert_eq!(body, "ping");
    let spans = jaeger.trace(trace_id, 5);
    let parent = parents(&spans);
    let publisher = named(&spans, "publisher wasi:http/incoming-handler.handle");
    let request = named(&spans, "wasmcloud:messaging request");
    let echo = named(&spans, "echo wasmcloud:messaging/handler.handle-message");
    assert_eq!(parent[&id(request)], id(publisher), "{spans:#?}");
    assert_eq!(tag(request, "messaging.destination.name"), Some("echo.hi"));
    assert_eq!(tag(request, "backend"), Some("nats"), "{request:#}");
    assert!(descends(&parent, echo, request), "{spans:#?}");
    assert_eq!(tag(echo, "workload"), Some("default/echo"), "{echo:#}");
    // The echo's reply is a publish of its own invocation.
    let reply = named(&spans, "wasmcloud:messaging publish");
    assert_eq!(parent[&id(reply)], id(echo), "{spans:#?}");

    let trace_id = "6bf92f3577b34da6a3ce929d0e0e4738";
    let body = curl(&[
        "-sf",
        "-H",
        "Host: counter.localhost",
        "-H",
        &format!("traceparent: 00-{trace_id}-00f067aa0ba902b9-01"),
        &format!("http://{}/incr?key=visits", running.http),
    ]);
    assert_eq!(body.trim(), "1");
    let spans = jaeger.trace(trace_id, 3);
    let parent = parents(&spans);
    let counter = named(&spans, "counter wasi:http/incoming-handler.handle");
    let increment = named(&spans, "wasi:keyvalue increment");
    assert_eq!(parent[&id(increment)], id(counter), "{spans:#?}");
    assert_eq!(tag(increment, "bucket"), Some("counter"), "{increment:#}");
    assert_eq!(tag(increment, "backend"), Some("memory"), "{increment:#}");
}
