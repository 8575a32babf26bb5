//! Background loops. (Placeholder.)

use std::sync::Arc;

use tokio::task::JoinHandle;

use crate::node::Inner;

pub(crate) fn spawn_all(_inner: Arc<Inner>) -> Vec<JoinHandle<()>> {
    Vec::new()
}
