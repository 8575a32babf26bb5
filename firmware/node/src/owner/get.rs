//! `get`: the verified plaintext of a file as a stream (see `read`).

use std::sync::Arc;

use bunker_manifest::FilePath;

use crate::error::FileError;
use crate::node::{FileStream, Inner};
use crate::owner::bridge::{blocking_to_async, CHUNK};
use crate::owner::read::{read_into, sources};

pub(crate) async fn get(inner: &Arc<Inner>, path: &str) -> Result<FileStream, FileError> {
    let file_path = FilePath::parse(path)?;
    let Some(file) = inner.db.call(move |m| m.file(&file_path)).await? else {
        return Err(FileError::NotFound(path.to_string()));
    };
    let from = sources(inner, &file, true).await;
    if from.is_empty() {
        return Err(FileError::Unavailable {
            path: path.to_string(),
            reasons: "no local copy and no active replica".into(),
        });
    }
    let (reader, writer_end) = tokio::io::duplex(CHUNK);
    let writer = blocking_to_async(writer_end);
    let len = file.size;
    let inner = Arc::clone(inner);
    tokio::spawn(async move {
        let _busy = inner.workers.throttle().foreground();
        if let (Err(reasons), _) = read_into(&inner, &file, from, writer).await {
            // The stream ends short of `len`: that is how the reader learns it.
            tracing::warn!(file = %file.path, reasons = %reasons.join("; "), "get failed");
        }
    });
    Ok(FileStream { len, body: reader })
}
