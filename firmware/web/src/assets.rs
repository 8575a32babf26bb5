//! The web UI, embedded at build time from `web-ui/public`, so the box needs
//! no files beside its binary and no CDN: a phone on a LAN without internet
//! gets the whole page from the box.

use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use include_dir::{include_dir, Dir};

static UI: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../web-ui/public");

/// Serves an embedded file for `uri`, `index.html` for `/`.
pub(crate) async fn serve(uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    let path = if path.is_empty() { "index.html" } else { path };
    // Only plain relative names: the embedded tree has no `..`, but refusing
    // them here keeps that true whatever the lookup does.
    if path.split('/').any(|part| part.is_empty() || part == "." || part == ".." || part.contains('%')) {
        return StatusCode::NOT_FOUND.into_response();
    }
    match UI.get_file(path) {
        Some(file) => {
            ([(header::CONTENT_TYPE, content_type(path)), (header::CACHE_CONTROL, "no-cache")], file.contents())
                .into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        Some("ico") => "image/x-icon",
        _ => "application/octet-stream",
    }
}
