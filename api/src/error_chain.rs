//! How every Weft binary shows an error on one line: in a status message, an Event or a log.

use std::error::Error;

/// An error and its sources, joined by `: ` (`component hello: failed to compile: ...`).
pub fn error_chain(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
