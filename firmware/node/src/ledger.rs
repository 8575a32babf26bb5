//! Payment records into MANIFEST.db; Lightning start-up. (Placeholder.)

use std::sync::Arc;

use bunker_ln::LnConfig;
use tokio::task::JoinHandle;

use crate::node::Inner;

pub(crate) fn start_lightning(_inner: Arc<Inner>, _config: Option<LnConfig>) -> Vec<JoinHandle<()>> {
    Vec::new()
}
