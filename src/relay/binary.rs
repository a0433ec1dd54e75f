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
        // notepack.io's `undefined` and `Date` (`--parser msgpack`), as JSON.stringify writes
        // them, so the app sees what the default parser would have carried.
        value if is_undefined(value) => Json::Null,
        rmpv::Value::Ext(0, bytes) if bytes.len() == 8 => {
            let mut millis = [0; 8];
            millis.copy_from_slice(bytes);
            iso_date(i64::from_be_bytes(millis)).map_or(Json::Null, Json::String)
        }
        rmpv::Value::Binary(bytes) | rmpv::Value::Ext(_, bytes) => {
            let mut map = Map::with_capacity(1);
            map.insert(BINARY_KEY.to_owned(), Json::String(STANDARD.encode(bytes)));
            Json::Object(map)
        }
        rmpv::Value::Array(items) => Json::Array(items.iter().map(to_json).collect()),
        rmpv::Value::Map(entries) => Json::Object(
            entries
                .iter()
                // JSON.stringify leaves out a key whose value is `undefined`.
                .filter(|(_, value)| !is_undefined(value))
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

/// notepack.io's `undefined`: an extension of type 0 holding one byte. (An `ArrayBuffer`, also
/// of type 0, has been read as binary by then.)
fn is_undefined(value: &rmpv::Value) -> bool {
    matches!(value, rmpv::Value::Ext(0, bytes) if bytes.len() == 1)
}

/// A time in Unix milliseconds as JavaScript's `Date.prototype.toISOString` writes it
/// (`1970-01-01T00:00:00.000Z`), or `None` outside the years 0 to 9999, where it writes an
/// expanded year or fails.
pub(crate) fn iso_date(millis: i64) -> Option<String> {
    const MS_PER_DAY: i64 = 86_400_000;
    let days = millis.div_euclid(MS_PER_DAY);
    let ms_of_day = millis.rem_euclid(MS_PER_DAY);
    // Days to a civil date in the proleptic Gregorian calendar (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    if !(0..=9999).contains(&year) {
        return None;
    }
    Some(format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        ms_of_day / 3_600_000,
        ms_of_day / 60_000 % 60,
        ms_of_day / 1_000 % 60,
        ms_of_day % 1_000
    ))
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
    fn msgpack_undefined_and_dates_read_as_json_stringify_writes_them() {
        let date = |millis: i64| rmpv::Value::Ext(0, millis.to_be_bytes().to_vec());
        let args = vec![
            rmpv::Value::Ext(0, vec![0]),
            date(0),
            date(1_763_740_800_123),
            date(951_782_400_000 - 1),
            date(-1),
            date(253_402_300_800_000),
            rmpv::Value::Ext(0, vec![1, 2]),
            rmpv::Value::Ext(5, vec![1]),
            rmpv::Value::Map(vec![
                (rmpv::Value::from("gone"), rmpv::Value::Ext(0, vec![0])),
                (rmpv::Value::from("kept"), rmpv::Value::Nil),
            ]),
        ];
        assert_eq!(
            args_to_json(&args),
            [
                Json::Null,
                json!("1970-01-01T00:00:00.000Z"),
                json!("2025-11-21T16:00:00.123Z"),
                json!("2000-02-28T23:59:59.999Z"),
                json!("1969-12-31T23:59:59.999Z"),
                Json::Null,
                json!({ "_binary": "AQI=" }),
                json!({ "_binary": "AQ==" }),
                json!({ "kept": null }),
            ]
        );
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
