//! A real Jaeger (`weft_e2e::JaegerServer`) for benchmarks and manual runs: prints its OTLP
//! endpoint on the first line and its query API on the second, and serves until killed.

fn main() {
    let jaeger = weft_e2e::JaegerServer::start();
    println!("{}", jaeger.otlp);
    println!("{}", jaeger.query);
    loop {
        std::thread::park();
    }
}
