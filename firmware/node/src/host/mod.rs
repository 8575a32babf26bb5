//! Answers peers. (Placeholder.)

use bunker_net::InboundRequest;

use crate::node::Inner;

pub(crate) async fn handle(_inner: &Inner, req: InboundRequest) {
    tracing::debug!(peer = %req.peer(), "inbound request not handled yet");
}
