//! Exports the custom interface `weft:examples/greet`; it needs no WASI at all.
//! `greet-http` imports it, and the host links the two at runtime.

wit_bindgen::generate!({ path: "../../wit", world: "greeter" });

struct Greeter;

impl exports::weft::examples::greet::Guest for Greeter {
    fn greet(name: String) -> String {
        format!("Hello, {name}!")
    }
}

export!(Greeter);
