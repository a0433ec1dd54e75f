//! Long-polling responses compressed as Node's engine.io compresses them (`httpCompression`).
//!
//! Node compresses the body of a polling `GET` (the packets waiting for the client, the
//! handshake included) when it holds at least `threshold` bytes and the request's
//! `Accept-Encoding` accepts `gzip` or `deflate`, chosen as the npm `accepts` package chooses:
//! higher `q` first, then the coding named earlier in the header, then gzip. The answer to a
//! `POST` (`ok`), errors and WebSocket upgrades are left as they are. The compressed body gets
//! `Content-Encoding` and its own `Content-Length`, and no `Vary` header, as in Node.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use flate2::Compression;
use flate2::write::{GzEncoder, ZlibEncoder};
use http::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderValue, Method, StatusCode};
use std::io::Write;

/// Bodies larger than this are compressed on the blocking pool rather than on the thread
/// serving connections (gzip takes about 1 ms per 100 KiB here).
const INLINE_LIMIT: usize = 64 * 1024;

/// The smallest polling body that is compressed, as `httpCompression.threshold`.
#[derive(Debug, Clone, Copy)]
pub struct PollingCompression {
    pub threshold: usize,
}

/// A content coding Node's polling transport offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Gzip,
    /// zlib-wrapped deflate, which is what HTTP's `deflate` means (and what Node sends).
    Deflate,
}

impl Coding {
    fn name(self) -> &'static str {
        match self {
            Coding::Gzip => "gzip",
            Coding::Deflate => "deflate",
        }
    }

    /// `body` in this coding, at zlib's default level as Node's `zlib` uses.
    pub fn encode(self, body: &[u8]) -> Vec<u8> {
        let out = Vec::with_capacity(body.len() / 4 + 64);
        // Writing to a Vec cannot fail.
        match self {
            Coding::Gzip => {
                let mut encoder = GzEncoder::new(out, Compression::default());
                encoder.write_all(body).expect("writes to memory");
                encoder.finish().expect("writes to memory")
            }
            Coding::Deflate => {
                let mut encoder = ZlibEncoder::new(out, Compression::default());
                encoder.write_all(body).expect("writes to memory");
                encoder.finish().expect("writes to memory")
            }
        }
    }
}

/// Compresses the response to a polling `GET` on the routes it layers.
pub async fn compress(
    State(compression): State<PollingCompression>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() != Method::GET {
        return next.run(request).await;
    }
    let accepted: Vec<&str> = request
        .headers()
        .get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect();
    let coding = preferred_coding(&accepted.join(","));
    let response = next.run(request).await;
    let Some(coding) = coding else {
        return response;
    };
    if response.status() != StatusCode::OK
        || response.headers().contains_key(CONTENT_ENCODING)
        || !is_polling_payload(response.headers().get(CONTENT_TYPE))
    {
        return response;
    }
    // A body known to be small is passed on without being read.
    if let Some(len) = http_body::Body::size_hint(response.body()).exact()
        && usize::try_from(len).is_ok_and(|len| len < compression.threshold)
    {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // Polling bodies are whole in memory already (engineioxide answers with a full body).
    let Ok(body) = to_bytes(body, usize::MAX).await else {
        return Response::from_parts(parts, Body::empty());
    };
    if body.len() < compression.threshold {
        return Response::from_parts(parts, Body::from(body));
    }
    let encoded = if body.len() > INLINE_LIMIT {
        match tokio::task::spawn_blocking(move || coding.encode(&body)).await {
            Ok(encoded) => encoded,
            // Node answers 500 when compressing fails.
            Err(_) => {
                let mut failed = Response::new(Body::empty());
                *failed.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                return failed;
            }
        }
    } else {
        coding.encode(&body)
    };
    parts
        .headers
        .insert(CONTENT_ENCODING, HeaderValue::from_static(coding.name()));
    parts.headers.insert(CONTENT_LENGTH, encoded.len().into());
    Response::from_parts(parts, Body::from(Bytes::from(encoded)))
}

/// The two content types of Engine.IO polling payloads (text, and v3's binary).
fn is_polling_payload(content_type: Option<&HeaderValue>) -> bool {
    content_type
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value.starts_with("text/plain") || value.starts_with("application/octet-stream")
        })
}

/// One entry of an `Accept-Encoding` list.
struct Accepted<'a> {
    coding: &'a str,
    q: f64,
    /// Its position in the header.
    position: usize,
}

/// What `accepts(req).encodings(["gzip", "deflate"])` answers in Node (negotiator 0.6):
/// each coding takes the best entry naming it, or `*`, preferring an exact name, then a higher
/// `q`, then a later entry; the acceptable codings (q > 0) are ranked by `q`, exact name,
/// earlier entry, then gzip before deflate.
pub fn preferred_coding(accept_encoding: &str) -> Option<Coding> {
    let accepted: Vec<Accepted<'_>> = accept_encoding
        .split(',')
        .enumerate()
        .filter_map(|(position, entry)| parse_entry(entry, position))
        .collect();
    // (q, exact, position, index among the offered codings)
    let mut best: Option<(f64, bool, usize, usize, Coding)> = None;
    for (index, coding) in [Coding::Gzip, Coding::Deflate].into_iter().enumerate() {
        let mut priority: Option<(bool, f64, usize)> = None;
        for entry in &accepted {
            let exact = entry.coding.eq_ignore_ascii_case(coding.name());
            if !exact && entry.coding != "*" {
                continue;
            }
            let candidate = (exact, entry.q, entry.position);
            let better = match priority {
                None => true,
                Some((p_exact, p_q, p_position)) => (exact, entry.q, entry.position)
                    .partial_cmp(&(p_exact, p_q, p_position))
                    .is_some_and(|order| order.is_gt()),
            };
            if better {
                priority = Some(candidate);
            }
        }
        let Some((exact, q, position)) = priority else {
            continue;
        };
        if q <= 0.0 {
            continue;
        }
        let ranks_higher = match best {
            None => true,
            Some((b_q, b_exact, b_position, b_index, _)) => {
                q > b_q
                    || (q == b_q
                        && (exact && !b_exact
                            || (exact == b_exact
                                && (position < b_position
                                    || (position == b_position && index < b_index)))))
            }
        };
        if ranks_higher {
            best = Some((q, exact, position, index, coding));
        }
    }
    best.map(|(_, _, _, _, coding)| coding)
}

/// `gzip;q=0.5` as negotiator reads it: the coding up to the first space or `;`, and the first
/// `q` parameter parsed as JavaScript's `parseFloat` would (a value that is no number counts
/// as 0, refusing the coding).
fn parse_entry(entry: &str, position: usize) -> Option<Accepted<'_>> {
    let entry = entry.trim();
    let (coding, params) = match entry.split_once(';') {
        Some((coding, params)) => (coding.trim_end(), Some(params)),
        None => (entry, None),
    };
    if coding.is_empty() || coding.contains(char::is_whitespace) {
        return None;
    }
    let mut q = 1.0;
    if let Some(params) = params {
        for param in params.split(';') {
            let mut pair = param.trim().split('=');
            if pair.next() == Some("q") {
                q = pair.next().map_or(0.0, leading_number);
                break;
            }
        }
    }
    Some(Accepted {
        coding,
        q,
        position,
    })
}

/// The number at the start of `text` (`"0.5"`, `"1.0x"`), or 0.
fn leading_number(text: &str) -> f64 {
    let text = text.trim_start();
    let end = text
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .map_or(text.len(), |(at, _)| at);
    text[..end].parse().unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn codings_are_chosen_as_node_chooses_them() {
        for (header, expected) in [
            ("gzip, deflate, br", Some(Coding::Gzip)),
            ("deflate, gzip", Some(Coding::Deflate)),
            ("gzip;q=0.5, deflate", Some(Coding::Deflate)),
            ("GZIP", Some(Coding::Gzip)),
            ("*", Some(Coding::Gzip)),
            ("br, *;q=0.1", Some(Coding::Gzip)),
            ("gzip;q=0, *", Some(Coding::Deflate)),
            ("gzip;q=0, deflate;q=0", None),
            ("identity", None),
            ("br", None),
            ("", None),
            ("deflate;q=abc", None),
        ] {
            assert_eq!(preferred_coding(header), expected, "{header:?}");
        }
    }

    #[test]
    fn both_codings_decode_to_the_body() {
        let body = "4hello world ".repeat(200);
        let gzip = Coding::Gzip.encode(body.as_bytes());
        let mut decoded = String::new();
        flate2::read::GzDecoder::new(&gzip[..])
            .read_to_string(&mut decoded)
            .unwrap();
        assert_eq!(decoded, body);
        let deflate = Coding::Deflate.encode(body.as_bytes());
        decoded.clear();
        flate2::read::ZlibDecoder::new(&deflate[..])
            .read_to_string(&mut decoded)
            .unwrap();
        assert_eq!(decoded, body);
        assert!(gzip.len() < body.len() / 10);
    }
}
