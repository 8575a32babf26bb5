//! The owner's side of the engine: what the box does with its own files.
//!
//! - `put`: one read pass seals every copy (`seal`, fed through `bridge`),
//!   `placement` finds hosts and concludes contracts, the manifest records
//!   it all at once.
//! - `get` / `read`: verified plaintext from the local copy or the best
//!   host, resuming on the next copy after any error.
//! - `remove`, `redundancy` (policy changes, new copies), `contracts`
//!   (releasing), `local` (the keep-local copy), `policy` (what may be asked,
//!   audit timing), `views` (what the owner is shown).
//!
//! The background side (audits, full checks, repair) is in `crate::workers`
//! and uses these pieces.

mod bridge;
pub(crate) mod contracts;
mod get;
pub(crate) mod local;
pub(crate) mod lock;
pub(crate) mod placement;
pub(crate) mod policy;
mod put;
pub(crate) mod read;
pub(crate) mod redundancy;
mod remove;
mod seal;
mod views;

use std::sync::Arc;

/// A blocking reader over a fetched object (for the workers' full checks).
pub(crate) fn bridge_reader<R>(body: R) -> impl std::io::Read + Send + 'static
where
    R: futures::AsyncRead + Send + Unpin + 'static,
{
    bridge::futures_to_blocking(body)
}


use crate::config::Policy;
use crate::error::{DbError, FileError, PutError};
use crate::node::{FileStream, Inner};
use crate::views::*;

pub(crate) async fn put<R>(inner: &Arc<Inner>, path: &str, size: u64, policy: Policy, body: R) -> Result<FileView, PutError>
where
    R: tokio::io::AsyncRead + Send + Unpin + 'static,
{
    let _busy = inner.workers.throttle().foreground();
    put::put(inner, path, size, policy, body).await
}
pub(crate) async fn get(inner: &Arc<Inner>, path: &str) -> Result<FileStream, FileError> {
    get::get(inner, path).await
}
pub(crate) async fn remove(inner: &Arc<Inner>, path: &str) -> Result<(), FileError> {
    remove::remove(inner, path).await
}
pub(crate) async fn set_policy(inner: &Arc<Inner>, path: &str, policy: Policy) -> Result<FileView, FileError> {
    redundancy::set_policy(inner, path, policy).await
}
pub(crate) async fn list(inner: &Arc<Inner>, folder: &str) -> Result<Listing, FileError> {
    views::list(inner, folder).await
}
pub(crate) async fn detail(inner: &Arc<Inner>, path: &str) -> Result<FileDetail, FileError> {
    views::detail(inner, path).await
}
pub(crate) async fn peers(inner: &Arc<Inner>) -> Result<PeersView, DbError> {
    views::peers(inner).await
}
pub(crate) async fn contracts(inner: &Arc<Inner>) -> Result<Vec<ContractView>, DbError> {
    views::contracts(inner).await
}
pub(crate) async fn audits(inner: &Arc<Inner>, limit: u32) -> Result<Vec<AuditView>, DbError> {
    views::audits(inner, limit).await
}
pub(crate) async fn payments(inner: &Arc<Inner>, limit: u32) -> Result<Vec<PaymentView>, DbError> {
    views::payments(inner, limit).await
}
pub(crate) async fn status(inner: &Arc<Inner>) -> Result<NodeStatus, DbError> {
    views::status(inner).await
}
