//! Copies of a request's URI and header values, for requests whose parts outlive them.
//!
//! hyper parses the URI and header values as slices of its connection read buffer, so any of
//! them kept alive keeps the whole buffer (8 KiB or more) alive. socketioxide keeps each
//! socket's request parts for the socket's lifetime, and axum stores another copy of the URI
//! (`OriginalUri`); copying them lets the buffer go once the WebSocket upgrade is done.

use axum::extract::{OriginalUri, Request};
use axum::middleware::Next;
use axum::response::Response;
use http::{HeaderMap, HeaderValue, Uri};

/// Replaces the URI, `OriginalUri` and header values with copies that own their bytes.
pub async fn own(mut request: Request, next: Next) -> Response {
    let headers = std::mem::take(request.headers_mut());
    let mut owned = HeaderMap::with_capacity(headers.len());
    for (name, value) in &headers {
        // Header names are copied by hyper already; values are slices of its buffer.
        if let Ok(copy) = HeaderValue::from_bytes(value.as_bytes()) {
            owned.append(name.clone(), copy);
        }
    }
    drop(headers);
    *request.headers_mut() = owned;
    if let Some(uri) = owned_uri(request.uri()) {
        *request.uri_mut() = uri;
    }
    if let Some(original) = request.extensions_mut().remove::<OriginalUri>() {
        let uri = owned_uri(&original.0).unwrap_or(original.0);
        request.extensions_mut().insert(OriginalUri(uri));
    }
    next.run(request).await
}

fn owned_uri(uri: &Uri) -> Option<Uri> {
    Uri::try_from(uri.to_string()).ok()
}
