//! Exports `weft:examples/greet` as a WASI 0.3 async function: `greet(name)` returns
//! `Hello, <name>!`, and greeting `slow` first awaits a 500 ms timer. A 0.2 component
//! (`greet-http`) that imports `greet` is linked to it by the host.

// `greet` as an `async func`: the same interface name and version as `wit/examples.wit`'s, so a
// 0.2 component importing the synchronous `greet` is linked to it by the host.
wit_bindgen::generate!({
    inline: r#"
        package weft:examples@0.1.0;
        interface greet {
            greet: async func(name: string) -> string;
        }
        world greeter-p3 {
            export greet;
        }
    "#,
});

struct Greeter;

impl exports::weft::examples::greet::Guest for Greeter {
    async fn greet(name: String) -> String {
        if name == "slow" {
            wasip3::clocks::monotonic_clock::wait_for(500_000_000).await;
        }
        format!("Hello, {name}!")
    }
}

export!(Greeter);
