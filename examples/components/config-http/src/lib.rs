//! Reads its greeting from `wasi:config/store` and logs through `wasi:logging`.
//! `/all` lists every config entry as sorted `key=value` lines, `/env` the environment
//! (`wasi:cli/environment`) the same way.

use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{IncomingRequest, ResponseOutparam};
use weft_guest::respond;

// Bindings for the draft WASI imports, which `wasip2` does not cover; without
// `generate_all` wit-bindgen expects every `wasi:` package to come from elsewhere.
wit_bindgen::generate!({ path: "../../wit", world: "config-http", generate_all });

use wasi::config::store;
use wasi::logging::logging::{Level, log};

struct ConfigHttp;

impl Guest for ConfigHttp {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let (body, message) = match request.path_with_query().as_deref() {
            Some("/all") => (list_config(), "served all config"),
            Some("/env") => (Ok(list_env()), "served the environment"),
            _ => (greeting(), "served greeting"),
        };
        match body {
            Ok(body) => {
                log(Level::Info, "config-http", message);
                respond(out, 200, body.as_bytes());
            }
            Err(e) => {
                let text = format!("config error: {e:?}\n");
                log(Level::Error, "config-http", &text);
                respond(out, 500, text.as_bytes());
            }
        }
    }
}

fn greeting() -> Result<String, store::Error> {
    let greeting = store::get("greeting")?.unwrap_or_else(|| "hello".into());
    Ok(format!("{greeting}\n"))
}

fn list_config() -> Result<String, store::Error> {
    let mut entries = store::get_all()?;
    entries.sort();
    Ok(entries.iter().map(|(k, v)| format!("{k}={v}\n")).collect())
}

fn list_env() -> String {
    let mut vars = wasip2::cli::environment::get_environment();
    vars.sort();
    vars.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
}

wasip2::http::proxy::export!(ConfigHttp);
