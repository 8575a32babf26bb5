//! What the engine receives: one [`InboundRequest`] per request a peer made, each carrying the
//! noise-authenticated PeerId of the requester and a way to answer.

use libp2p::{request_response::ResponseChannel, PeerId};
use tokio::sync::mpsc;

use crate::{
    bulk::{InboundFetch, InboundStore},
    error::NetClosed,
    event_loop::Command,
    messages::*,
};

/// A request from a peer, for the engine to answer. Dropping a reply without answering makes
/// the peer's request fail promptly (it does not hang until its timeout).
#[derive(Debug)]
#[non_exhaustive]
pub enum InboundRequest {
    /// `/bunker/offer/1`
    Offer {
        /// Requester.
        peer: PeerId,
        /// The ask.
        request: OfferRequest,
        /// Where the quote goes.
        reply: Reply<Offer>,
    },
    /// `/bunker/contract/2`
    Contract {
        /// Requester.
        peer: PeerId,
        /// The proposal.
        proposal: ContractProposal,
        /// Where the answer goes.
        reply: Reply<ContractAnswer>,
    },
    /// `/bunker/audit/1`
    Audit {
        /// Requester.
        peer: PeerId,
        /// The challenge.
        challenge: AuditChallenge,
        /// Where the proof goes.
        reply: Reply<AuditResponse>,
    },
    /// `/bunker/manifest/1`. `peer` is authenticated by noise: answer `Fetch` only when it is
    /// the owner of the snapshot.
    Manifest {
        /// Requester.
        peer: PeerId,
        /// Store or fetch.
        request: ManifestRequest,
        /// Where the answer goes.
        reply: Reply<ManifestResponse>,
    },
    /// `/bunker/recover/1`
    Recover {
        /// Requester (the previous hop).
        peer: PeerId,
        /// The search.
        request: RecoverRequest,
        /// Where the result goes.
        reply: Reply<RecoverResponse>,
    },
    /// `/bunker/release/1`
    Release {
        /// Requester.
        peer: PeerId,
        /// The release.
        request: ReleaseRequest,
        /// Where the acknowledgement goes.
        reply: Reply<ReleaseResponse>,
    },
    /// `/bunker/holdings/1`. `peer` is authenticated by noise: answer only with the contracts
    /// whose owner is `peer`, and nothing else.
    Holdings {
        /// Requester (the owner asking what is held for it).
        peer: PeerId,
        /// Which page.
        request: HoldingsRequest,
        /// Where the page goes.
        reply: Reply<HoldingsResponse>,
    },
    /// `/bunker/store/2`: an owner wants to upload an object.
    Store(InboundStore),
    /// `/bunker/fetch/2`: a peer wants a whole object.
    Fetch(InboundFetch),
}

impl InboundRequest {
    /// The noise-authenticated requester.
    pub fn peer(&self) -> PeerId {
        match self {
            Self::Offer { peer, .. }
            | Self::Contract { peer, .. }
            | Self::Audit { peer, .. }
            | Self::Manifest { peer, .. }
            | Self::Recover { peer, .. }
            | Self::Release { peer, .. }
            | Self::Holdings { peer, .. } => *peer,
            Self::Store(s) => s.peer,
            Self::Fetch(f) => f.peer,
        }
    }
}

/// One-shot answer to a request-response request.
pub struct Reply<R> {
    channel: ResponseChannel<R>,
    commands: mpsc::Sender<Command>,
    wrap: fn(ResponseChannel<R>, R) -> Command,
}

impl<R> std::fmt::Debug for Reply<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reply")
    }
}

impl<R> Reply<R> {
    pub(crate) fn new(
        channel: ResponseChannel<R>,
        commands: mpsc::Sender<Command>,
        wrap: fn(ResponseChannel<R>, R) -> Command,
    ) -> Self {
        Self { channel, commands, wrap }
    }

    /// Sends the answer. It fails only when the node has shut down; a peer that went away in
    /// the meantime is logged by the node, not reported here.
    pub async fn send(self, response: R) -> Result<(), NetClosed> {
        let cmd = (self.wrap)(self.channel, response);
        self.commands.send(cmd).await.map_err(|_| NetClosed)
    }
}
