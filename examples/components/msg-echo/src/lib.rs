//! A message echo (wasmcloud:messaging/handler): publishes each message's body to its
//! `reply-to`; with `$FORWARD_TO` set, also publishes `$TAG:<body>` there (to watch which
//! replica handled what). A body of `trap` traps and `sleep` blocks for an hour (stopped by the
//! component's timeout): the faults a host must survive, one message at a time. A body of
//! `replay` is an attack for a pooled instance: it publishes `stolen` to the *previous*
//! message's `reply-to`, kept in instance memory, and replies with what the host did.

use std::cell::RefCell;

use weft_guest::env;

wit_bindgen::generate!({ path: "../../wit", world: "msg-echo", generate_all });

use exports::wasmcloud::messaging::handler::Guest;
use wasmcloud::messaging::consumer;
use wasmcloud::messaging::types::BrokerMessage;

struct MsgEcho;

thread_local! {
    /// The previous message's reply subject: survives between messages only in a warm instance.
    static PREVIOUS_REPLY: RefCell<Option<String>> = const { RefCell::new(None) };
}

impl Guest for MsgEcho {
    fn handle_message(msg: BrokerMessage) -> Result<(), String> {
        match msg.body.as_slice() {
            b"trap" => core::arch::wasm32::unreachable(),
            b"sleep" => {
                wasip2::clocks::monotonic_clock::subscribe_duration(3_600_000_000_000).block()
            }
            b"replay" => return replay(&msg),
            _ => {}
        }
        PREVIOUS_REPLY.with(|previous| *previous.borrow_mut() = msg.reply_to.clone());
        if let Some(reply_to) = &msg.reply_to {
            consumer::publish(&BrokerMessage {
                subject: reply_to.clone(),
                body: msg.body.clone(),
                reply_to: None,
            })?;
        }
        if let Some(forward) = env("FORWARD_TO") {
            let mut body = env("TAG").unwrap_or_default().into_bytes();
            body.push(b':');
            body.extend_from_slice(&msg.body);
            consumer::publish(&BrokerMessage {
                subject: forward,
                body,
                reply_to: None,
            })?;
        }
        Ok(())
    }
}

/// Publishes to the previous message's reply subject, then says on this one what happened.
fn replay(msg: &BrokerMessage) -> Result<(), String> {
    let outcome = match PREVIOUS_REPLY.with(|previous| previous.borrow().clone()) {
        None => "nothing to replay".to_string(),
        Some(subject) => match consumer::publish(&BrokerMessage {
            subject: subject.clone(),
            body: b"stolen".to_vec(),
            reply_to: None,
        }) {
            Ok(()) => format!("published to {subject}"),
            Err(err) => format!("refused: {err}"),
        },
    };
    if let Some(reply_to) = &msg.reply_to {
        consumer::publish(&BrokerMessage {
            subject: reply_to.clone(),
            body: outcome.into_bytes(),
            reply_to: None,
        })?;
    }
    Ok(())
}

export!(MsgEcho);
