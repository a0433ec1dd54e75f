//! The web page at `/`, the socket.io-client bundle at `<path>socket.io.js` and, with
//! `--admin-ui`, the Admin UI at `/admin/`.

use std::path::Path;

use axum::Router;
use axum::response::{Html, Redirect};
use axum::routing::{any, get};
use http::StatusCode;
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

const ADMIN_UI_NOT_BUILT: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>iorelay Admin UI</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 4em auto">
<h1>The Admin UI is not built</h1>
<p>iorelay serves the Admin UI from <code>&lt;static-dir&gt;/admin/</code>, which the page build
fills from the <code>@socket.io/admin-ui</code> package. Build it with:</p>
<pre>cd client-demo &amp;&amp; npm ci &amp;&amp; npm run build</pre>
</body></html>
"#;

/// The Admin UI's files from `<dir>/admin/` at `/admin/`; `/admin` redirects there, since the
/// UI's page loads its scripts by relative paths. Without `--admin-ui` (`enabled` off) the
/// paths answer 404, though the page build holds the files.
pub fn admin_ui_router(dir: &Path, enabled: bool) -> Router {
    if !enabled {
        let off = any(|| async {
            (
                StatusCode::NOT_FOUND,
                "the Admin UI is off: start iorelay with --admin-ui\n",
            )
        });
        return Router::new()
            .route("/admin", off.clone())
            .route("/admin/", off.clone())
            .route("/admin/{*file}", off);
    }
    let router = Router::new().route("/admin", get(|| async { Redirect::permanent("/admin/") }));
    if dir.join("admin").join("index.html").is_file() {
        // The request path (`/admin/...`) is the file's path under `dir`.
        router
            .route_service("/admin/", ServeDir::new(dir))
            .route_service("/admin/{*file}", ServeDir::new(dir))
    } else {
        tracing::warn!(dir = %dir.join("admin").display(), "no Admin UI build found; /admin/ explains how to build it");
        let not_built = get(|| async { Html(ADMIN_UI_NOT_BUILT) });
        router
            .route("/admin/", not_built.clone())
            .route("/admin/{*file}", not_built)
    }
}
