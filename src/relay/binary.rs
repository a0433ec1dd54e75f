//! Event arguments as JSON for the app: binary travels as `{ "_binary": "<base64>" }` both ways,
//! so an app written against Socket.IO's JSON sees every argument and can send binary back.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value as Json};

/// The key of a binary value in JSON.
const BINARY_KEY: &str = "_binary";

/// Why an app's JSON could not be turned back into event arguments.
#[derive(Debug, thiserror::Error)]
#[error("invalid base64 in \"_binary\": {0}")]
pub struct BinaryError(#[from] base64::DecodeError);

/// An argument as JSON: binary as `{ "_binary": base64 }`, map keys as strings.
pub fn to_json(value: &rmpv::Value) -> Json {
    match value {
        rmpv::Value::Nil => Json::Null,
        rmpv::Value::Boolean(b) => Json::Bool(*b),
        rmpv::Value::Integer(n) => n
            .as_i64()
            .map(Json::from)
            .or_else(|| n.as_u64().map(Json::from))
            .unwrap_or(Json::Null),
        rmpv::Value::F32(f) => {
            serde_json::Number::from_f64(f64::from(*f)).map_or(Json::Null, Json::Number)
        }
        rmpv::Value::F64(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        rmpv::Value::String(s) => Json::String(s.as_str().map_or_else(
            || String::from_utf8_lossy(s.as_bytes()).into_owned(),
            str::to_owned,
        )),
        rmpv::Value::Binary(bytes) | rmpv::Value::Ext(_, bytes) => {
            let mut map = Map::with_capacity(1);
            map.insert(BINARY_KEY.to_owned(), Json::String(STANDARD.encode(bytes)));
            Json::Object(map)
        }
        rmpv::Value::Array(items) => Json::Array(items.iter().map(to_json).collect()),
        rmpv::Value::Map(entries) => Json::Object(
            entries
                .iter()
                .map(|(key, value)| {
                    let key = match key {
                        rmpv::Value::String(s) => s.as_str().unwrap_or_default().to_owned(),
                        other => other.to_string(),
                    };
                    (key, to_json(value))
                })
                .collect(),
        ),
    }
}

/// A JSON value from the app as an argument: an object whose only key is `_binary` becomes
/// binary.
pub fn from_json(value: &Json) -> Result<rmpv::Value, BinaryError> {
    Ok(match value {
        Json::Null => rmpv::Value::Nil,
        Json::Bool(b) => rmpv::Value::Boolean(*b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                rmpv::Value::from(i)
            } else if let Some(u) = n.as_u64() {
                rmpv::Value::from(u)
            } else {
                rmpv::Value::F64(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Json::String(s) => rmpv::Value::from(s.as_str()),
        Json::Array(items) => {
            rmpv::Value::Array(items.iter().map(from_json).collect::<Result<_, _>>()?)
        }
        Json::Object(map) => match map.get(BINARY_KEY) {
            Some(Json::String(encoded)) if map.len() == 1 => {
                rmpv::Value::Binary(STANDARD.decode(encoded)?)
            }
            _ => rmpv::Value::Map(
                map.iter()
                    .map(|(key, value)| Ok((rmpv::Value::from(key.as_str()), from_json(value)?)))
                    .collect::<Result<_, BinaryError>>()?,
            ),
        },
    })
}

/// Every argument of an event as JSON.
pub fn args_to_json(args: &[rmpv::Value]) -> Vec<Json> {
    args.iter().map(to_json).collect()
}

/// Arguments from the app.
pub fn args_from_json(args: &[Json]) -> Result<Vec<rmpv::Value>, BinaryError> {
    args.iter().map(from_json).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn binary_crosses_as_base64_and_back() {
        let args = vec![
            rmpv::Value::from("text"),
            rmpv::Value::Binary(vec![0, 1, 255]),
            rmpv::Value::Map(vec![(
                rmpv::Value::from("nested"),
                rmpv::Value::Binary(b"hi".to_vec()),
            )]),
        ];
        let json = args_to_json(&args);
        assert_eq!(
            json,
            [
                json!("text"),
                json!({ "_binary": "AAH/" }),
                json!({ "nested": { "_binary": "aGk=" } })
            ]
        );
        assert_eq!(args_from_json(&json).expect("valid"), args);
    }

    #[test]
    fn only_a_lone_binary_key_is_binary() {
        let value = json!({ "_binary": "AA==", "other": 1 });
        assert!(matches!(from_json(&value), Ok(rmpv::Value::Map(_))));
        assert!(from_json(&json!({ "_binary": "not base64!" })).is_err());
        assert_eq!(
            from_json(&json!(1.5)).expect("number"),
            rmpv::Value::F64(1.5)
        );
    }
}
