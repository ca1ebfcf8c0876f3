//! What `host-agent dev` shows on stdout: what it builds and serves, each request (method,
//! path, status, time) and the guests' log lines, each component's name in a colour of its own
//! on a terminal; with `--json`, one JSON object per line for tools. The host's own log stays
//! on stderr.

use std::io::{IsTerminal, Write};

use serde_json::{Map, Value, json};
use tracing::field::{Field, Visit};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use weft_runtime::GUEST_LOG;
use weft_runtime::http_server::ACCESS_LOG;

/// How `dev` prints, to stdout.
#[derive(Clone, Copy)]
pub struct Out {
    json: bool,
    colour: bool,
}

impl Out {
    /// Plain lines, as `run` prints.
    pub fn plain() -> Self {
        Self {
            json: false,
            colour: false,
        }
    }

    /// `dev`'s view: JSON lines, or text coloured when stdout is a terminal.
    pub fn dev(json: bool) -> Self {
        Self {
            json,
            colour: !json && std::io::stdout().is_terminal(),
        }
    }

    /// Prints one thing that happened: `text` for people, or `{"kind": kind, "message": text,
    /// ..fields}` for tools.
    pub fn say(&self, kind: &str, text: &str, fields: Value) {
        self.print(false, kind, text, fields);
    }

    /// Prints what went wrong: `error: <text>` on stderr for people, on stdout with the rest
    /// for tools (`kind` `error`).
    pub fn error(&self, text: &str, fields: Value) {
        self.print(true, "error", &format!("error: {text}"), fields);
    }

    fn print(&self, error: bool, kind: &str, text: &str, fields: Value) {
        let line = if self.json {
            let mut object = Map::new();
            object.insert("kind".into(), kind.into());
            object.insert("message".into(), text.into());
            if let Value::Object(fields) = fields {
                object.extend(fields);
            }
            Value::Object(object).to_string()
        } else {
            text.to_string()
        };
        // One write per line, so lines from several threads do not interleave.
        if error && !self.json {
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        } else {
            let _ = writeln!(std::io::stdout().lock(), "{line}");
        }
    }

    /// The view's tracing layer: requests and guest output go to stdout through it.
    pub fn view(self) -> weft_daemon::telemetry::View {
        weft_daemon::telemetry::View {
            layer: Box::new(self),
            targets: &[
                (ACCESS_LOG, tracing::Level::DEBUG),
                (GUEST_LOG, tracing::Level::TRACE),
            ],
        }
    }

    fn request(&self, fields: Map<String, Value>) {
        let text = |name: &str| fields.get(name).and_then(Value::as_str).unwrap_or("");
        let status = fields.get("status").and_then(Value::as_u64).unwrap_or(0);
        let ms = fields.get("ms").and_then(Value::as_f64).unwrap_or(0.0);
        let status_text = self.paint(status_colour(status), &status.to_string());
        let line = format!(
            "{} {} {status_text} {ms:.1} ms  {}",
            text("method"),
            text("path"),
            text("workload")
        );
        self.say("request", &line, Value::Object(fields));
    }

    fn guest(&self, level: &tracing::Level, mut fields: Map<String, Value>) {
        let text = |name: &str| fields.get(name).and_then(Value::as_str).unwrap_or("");
        let component = text("component");
        let name = self.paint(colour_of(component), &format!("[{component}]"));
        let level_text = match *level {
            tracing::Level::ERROR | tracing::Level::WARN => format!("{level} "),
            _ => String::new(),
        };
        // A guest's text goes to the developer's terminal: its control characters are shown,
        // not obeyed (no escape sequence rewrites the screen or the title).
        let line = format!("{name} {level_text}{}", shown(text("message")));
        fields.insert("level".into(), level.as_str().into());
        self.say("log", &line, Value::Object(fields));
    }

    fn paint(&self, colour: u8, text: &str) -> String {
        if self.colour {
            format!("\x1b[{colour}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for Out {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let meta = event.metadata();
        let mut fields = Fields(Map::new());
        match meta.target() {
            ACCESS_LOG => {
                event.record(&mut fields);
                self.request(fields.0);
            }
            GUEST_LOG => {
                event.record(&mut fields);
                self.guest(meta.level(), fields.0);
            }
            _ => {}
        }
    }
}

/// An event's fields as JSON values.
struct Fields(Map<String, Value>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), json!(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
}

/// `text` with its control characters (ESC, CR, BEL, ...) written as escapes.
fn shown(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return text.into();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

/// ANSI foreground colours for components: one per name, the same on every run.
fn colour_of(component: &str) -> u8 {
    const COLOURS: [u8; 6] = [36, 35, 34, 33, 32, 96];
    let sum = component
        .bytes()
        .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize));
    COLOURS[sum % COLOURS.len()]
}

fn status_colour(status: u64) -> u8 {
    match status {
        500.. => 31,
        400.. => 33,
        300.. => 36,
        _ => 32,
    }
}

#[cfg(test)]
mod tests {
    use super::shown;

    #[test]
    fn a_guest_line_cannot_drive_the_terminal() {
        assert_eq!(shown("plain text"), "plain text");
        let hostile = "\u{1b}]0;owned\u{7}\u{1b}[2Jcleared\rover";
        let line = shown(hostile);
        assert!(!line.chars().any(char::is_control), "{line:?}");
        assert_eq!(line, "\\u{1b}]0;owned\\u{7}\\u{1b}[2Jcleared\\rover");
    }
}
