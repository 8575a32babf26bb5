//! The owner's side. (Placeholder: every function here is to be written.)

use crate::config::Policy;
use crate::error::{DbError, FileError, PutError};
use crate::node::{FileStream, Inner};
use crate::views::*;

pub(crate) async fn put<R>(_inner: &Inner, _path: &str, _size: u64, _policy: Policy, _body: R) -> Result<FileView, PutError>
where
    R: tokio::io::AsyncRead + Send + Unpin + 'static,
{
    todo!("put")
}
pub(crate) async fn get(_inner: &Inner, _path: &str) -> Result<FileStream, FileError> {
    todo!("get")
}
pub(crate) async fn remove(_inner: &Inner, _path: &str) -> Result<(), FileError> {
    todo!("remove")
}
pub(crate) async fn set_policy(_inner: &Inner, _path: &str, _policy: Policy) -> Result<FileView, FileError> {
    todo!("set_policy")
}
pub(crate) async fn list(_inner: &Inner, _folder: &str) -> Result<Listing, FileError> {
    todo!("list")
}
pub(crate) async fn detail(_inner: &Inner, _path: &str) -> Result<FileDetail, FileError> {
    todo!("detail")
}
pub(crate) async fn peers(_inner: &Inner) -> Result<PeersView, DbError> {
    todo!("peers")
}
pub(crate) async fn contracts(_inner: &Inner) -> Result<Vec<ContractView>, DbError> {
    todo!("contracts")
}
pub(crate) async fn audits(_inner: &Inner, _limit: u32) -> Result<Vec<AuditView>, DbError> {
    todo!("audits")
}
pub(crate) async fn payments(_inner: &Inner, _limit: u32) -> Result<Vec<PaymentView>, DbError> {
    todo!("payments")
}
pub(crate) async fn status(_inner: &Inner) -> Result<NodeStatus, DbError> {
    todo!("status")
}
