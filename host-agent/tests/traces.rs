//! Traces end to end: `host-agent run` exporting OTLP to a real Jaeger, configured only by the
//! standard OpenTelemetry variables. A request with a W3C `traceparent` through a component
//! that calls another over outgoing HTTP is one trace, asked back from Jaeger's query API:
//! the client's span is the parent of the request's, each invocation is a span under its
//! request with its workload, component, outcome and instance, and the outgoing request
//! carries the context to the second Workload.

mod common;

use std::collections::HashMap;

use common::{agent, curl, examples};
use serde_json::Value;
use weft_e2e::JaegerServer;

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
        .arg("--egress-allow")
        .arg("127.0.0.1/32")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &jaeger.otlp)
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
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
    let parent: HashMap<&str, &str> = spans
        .iter()
        .filter_map(|s| {
            let reference = s["references"].as_array()?.first()?;
            Some((s["spanID"].as_str()?, reference["spanID"].as_str()?))
        })
        .collect();
    let named = |name: &str| {
        spans
            .iter()
            .find(|s| s["operationName"] == name)
            .unwrap_or_else(|| panic!("no span {name} in {spans:#?}"))
    };
    let id = |span: &Value| span["spanID"].as_str().unwrap().to_owned();
    let fetch = named("fetch wasi:http/incoming-handler.handle");
    let hello = named("hello wasi:http/incoming-handler.handle");
    // client -> GET (fetch's request) -> fetch's invocation -> GET (hello's) -> hello's.
    let fetch_request = parent[id(fetch).as_str()];
    assert_eq!(parent[fetch_request], client_span, "{spans:#?}");
    let hello_request = parent[id(hello).as_str()];
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
    let services = jaeger.get("/api/services").unwrap();
    assert!(
        services["data"]
            .as_array()
            .unwrap()
            .contains(&Value::from("weft-host-agent")),
        "{services}"
    );
}
