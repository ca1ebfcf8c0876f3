//! Exports the custom interface `weft:examples/greet`. `greet-http` imports it, and the
//! host links the two at runtime. Greeting `slow` takes half a second (a host-call wait),
//! so tests can hold the greeter busy.

wit_bindgen::generate!({ path: "../../wit", world: "greeter" });

struct Greeter;

impl exports::weft::examples::greet::Guest for Greeter {
    fn greet(name: String) -> String {
        if name == "slow" {
            wasip2::clocks::monotonic_clock::subscribe_duration(500_000_000).block();
        }
        format!("Hello, {name}!")
    }
}

export!(Greeter);
