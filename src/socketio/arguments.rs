//! An event's arguments, refused when Node's socket.io parser would refuse the packet.
//!
//! socketioxide reads only as much of an event as it needs: text after the JSON array is
//! ignored, placeholders are filled in arrival order whatever their `num`, and arguments that
//! fail to decode make it skip the handler without a word. Node closes the connection for each
//! of these. [`decode`] checks the raw packet first, so a handler either gets well-formed
//! arguments or disconnects the sender with the reason.

use std::sync::Arc;

use serde::Deserialize;
use serde::de::IgnoredAny;
use socketioxide::adapter::Adapter;
use socketioxide::extract::TryData;
use socketioxide::handler::FromMessageParts;
use socketioxide::socket::Socket;
use socketioxide_core::Value;
use socketioxide_core::parser::ParserError;

use crate::relay::payload::EventArgs;

/// Why an event's arguments were refused.
#[derive(Debug, thiserror::Error)]
pub enum MalformedArgs {
    /// The data is not exactly one JSON value: trailing text, or nesting past the parser's limit.
    #[error("the event is not one JSON array: {0}")]
    NotOneValue(#[source] serde_json::Error),
    /// A binary placeholder whose `num` is not the index of an attachment sent with the packet.
    #[error("a binary placeholder points at no attachment ({attachments} sent)")]
    PlaceholderOutOfRange {
        /// Attachments that came with the packet.
        attachments: usize,
    },
    /// The arguments are valid JSON but not valid event arguments (a lone surrogate, say).
    #[error("the event arguments do not decode: {0}")]
    Undecodable(#[source] ParserError),
}

/// Checks what socketioxide's decoder lets through: the data must be one JSON value with
/// nothing after it, and every binary placeholder must name an attachment that came with it.
pub fn check_raw(value: &Value) -> Result<(), MalformedArgs> {
    // Binary payloads come from the MessagePack parser, which decodes them whole.
    let Value::Str(data, attachments) = value else {
        return Ok(());
    };
    let mut json = serde_json::Deserializer::from_str(data.as_str());
    IgnoredAny::deserialize(&mut json)
        .and_then(|_| json.end())
        .map_err(MalformedArgs::NotOneValue)?;
    // `placeholder` also matches the key written with escapes (`\u005fplaceholder`).
    if data.as_str().contains("placeholder") {
        let attachments = attachments.as_ref().map_or(0, |queue| queue.len());
        let parsed: serde_json::Value =
            serde_json::from_str(data.as_str()).map_err(MalformedArgs::NotOneValue)?;
        if !placeholders_in_range(&parsed, attachments) {
            return Err(MalformedArgs::PlaceholderOutOfRange { attachments });
        }
    }
    Ok(())
}

/// Node's rule (`isIndexValid` in socket.io-parser): an object with `_placeholder: true` must
/// have a `num` that indexes the attachments.
fn placeholders_in_range(value: &serde_json::Value, attachments: usize) -> bool {
    match value {
        serde_json::Value::Array(items) => items
            .iter()
            .all(|item| placeholders_in_range(item, attachments)),
        serde_json::Value::Object(fields) => {
            if fields.get("_placeholder") == Some(&serde_json::Value::Bool(true)) {
                return fields
                    .get("num")
                    .and_then(serde_json::Value::as_u64)
                    .is_some_and(|num| num < attachments as u64);
            }
            fields
                .values()
                .all(|field| placeholders_in_range(field, attachments))
        }
        _ => true,
    }
}

/// An event's arguments, decoded as socketioxide's `Data<EventArgs>` would, or why they are
/// refused.
pub fn decode<A: Adapter>(
    socket: &Arc<Socket<A>>,
    value: &mut Value,
    ack_id: &Option<i64>,
) -> Result<EventArgs, MalformedArgs> {
    check_raw(value)?;
    let Ok(TryData(decoded)) = TryData::<EventArgs>::from_message_parts(socket, value, ack_id);
    decoded.map_err(MalformedArgs::Undecodable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use socketioxide_core::Str;

    fn text(data: &str, attachments: Option<usize>) -> Value {
        let attachments = attachments.map(|n| vec![Bytes::from_static(b"\x01"); n].into());
        Value::Str(Str::from(data.to_owned()), attachments)
    }

    #[test]
    fn well_formed_events_pass() {
        assert!(check_raw(&text(r#"["echo",1,{"a":[true]}] "#, None)).is_ok());
        let binary = r#"["message",{"_placeholder":true,"num":1},{"_placeholder":true,"num":0}]"#;
        assert!(check_raw(&text(binary, Some(2))).is_ok());
        assert!(
            check_raw(&text(r#"["x",{"_placeholder":false,"num":9}]"#, None)).is_ok(),
            "only `_placeholder: true` marks a placeholder"
        );
    }

    #[test]
    fn what_node_refuses_is_refused() {
        for (data, attachments) in [
            (r#"["echo","x"]garbage"#, None),
            (r#"["echo"]["echo"]"#, None),
            (r#"["echo","x""#, None),
        ] {
            let error = check_raw(&text(data, attachments)).expect_err(data);
            assert!(
                matches!(error, MalformedArgs::NotOneValue(_)),
                "{data}: {error}"
            );
        }
        // Nesting deeper than serde_json's 128 levels passes here (as in Node) and fails to decode.
        let deep = format!(r#"["echo",{}{}]"#, "[".repeat(100_000), "]".repeat(100_000));
        assert!(
            check_raw(&text(&deep, None)).is_ok(),
            "skipped without recursion"
        );
        for (data, attachments) in [
            (r#"["message",{"_placeholder":true,"num":9}]"#, Some(1)),
            (r#"["echo",{"_placeholder":true,"num":0}]"#, Some(0)),
            (r#"["echo",{"_placeholder":true,"num":0}]"#, None),
            (r#"["echo",[{"_placeholder":true,"num":-1}]]"#, Some(1)),
            (r#"["echo",{"a":{"_placeholder":true,"num":"0"}}]"#, Some(1)),
            (r#"["echo",{"\u005fplaceholder":true,"num":3}]"#, Some(1)),
        ] {
            let error = check_raw(&text(data, attachments)).expect_err(data);
            assert!(
                matches!(error, MalformedArgs::PlaceholderOutOfRange { .. }),
                "{data}: {error}"
            );
        }
    }
}
