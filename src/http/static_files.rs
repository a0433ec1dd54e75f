//! The web page at `/` and the socket.io-client bundle at `<path>socket.io.js`.

use std::path::Path;

use axum::Router;
use axum::response::Html;
use axum::routing::get;
use tower_http::services::{ServeDir, ServeFile};

/// Browser bundles of socket.io-client that Node socket.io's `serveClient` answers.
pub const CLIENT_BUNDLES: [&str; 6] = [
    "socket.io.js",
    "socket.io.js.map",
    "socket.io.min.js",
    "socket.io.min.js.map",
    "socket.io.esm.min.js",
    "socket.io.esm.min.js.map",
];

const NOT_BUILT: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>iorelay</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 4em auto">
<h1>iorelay is running</h1>
<p>The Socket.IO endpoint is live, but the demo page has not been built yet. Build it with:</p>
<pre>cd client-demo &amp;&amp; npm ci &amp;&amp; npm run build</pre>
<p>then reload this page (or start iorelay with <code>--static-dir</code> pointing at a build).</p>
</body></html>
"#;

/// Serves `dir` with `index.html` as the fallback for client-side routes, or a page that says
/// how to build it when `dir` holds no build.
pub fn router(dir: &Path) -> Router {
    let index = dir.join("index.html");
    if index.is_file() {
        Router::new().fallback_service(ServeDir::new(dir).fallback(ServeFile::new(index)))
    } else {
        tracing::warn!(dir = %dir.display(), "no web page build found; / explains how to build it");
        Router::new().fallback(get(|| async { Html(NOT_BUILT) }))
    }
}

/// Routes `<socket_io_path><bundle>` to the bundles that the page build copies into
/// `<dir>/socket.io/`.
pub fn client_bundle_router(dir: &Path, socket_io_path: &str) -> Router {
    CLIENT_BUNDLES.iter().fold(Router::new(), |router, bundle| {
        let file = dir.join("socket.io").join(bundle);
        router.route_service(&format!("{socket_io_path}{bundle}"), ServeFile::new(file))
    })
}
