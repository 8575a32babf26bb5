//! Protocol names. The version lives in the name: a change to a message type that old boxes
//! cannot decode gets a new name (`/2`), and both can be spoken side by side during an upgrade.

use libp2p::StreamProtocol;

/// `/bunker/offer/1`: quote for storage.
pub const OFFER: StreamProtocol = StreamProtocol::new("/bunker/offer/1");
/// `/bunker/contract/2`: propose / accept a contract. Version 2: the terms carry the owner
/// label, so a box of version 1 cannot decode them.
pub const CONTRACT: StreamProtocol = StreamProtocol::new("/bunker/contract/2");
/// `/bunker/store/2`: bulk upload of one object's sealed segments. Version 2: the body may
/// move on the host's lane (plain TCP, see DESIGN §4) instead of the stream.
pub const STORE: StreamProtocol = StreamProtocol::new("/bunker/store/2");
/// `/bunker/audit/1`: one-segment challenge.
pub const AUDIT: StreamProtocol = StreamProtocol::new("/bunker/audit/1");
/// `/bunker/fetch/2`: bulk download of a whole object, its body on the lane when the host has
/// one (version 2, as for store).
pub const FETCH: StreamProtocol = StreamProtocol::new("/bunker/fetch/2");
/// `/bunker/manifest/1`: store / fetch an encrypted manifest snapshot.
pub const MANIFEST: StreamProtocol = StreamProtocol::new("/bunker/manifest/1");
/// `/bunker/recover/1`: forwarded last-resort manifest search.
pub const RECOVER: StreamProtocol = StreamProtocol::new("/bunker/recover/1");
/// `/bunker/holdings/1`: the owner asks a host which contracts it holds for it (last-resort
/// recovery without a manifest).
pub const HOLDINGS: StreamProtocol = StreamProtocol::new("/bunker/holdings/1");
/// `/bunker/release/1`: end a contract.
pub const RELEASE: StreamProtocol = StreamProtocol::new("/bunker/release/1");
/// Kademlia under bunker's own name, so that boxes form their own DHT and do not mix with
/// the public IPFS one.
pub const KAD: StreamProtocol = StreamProtocol::new("/bunker/kad/1.0.0");
/// Identify protocol version string announced to peers.
pub const IDENTIFY_VERSION: &str = "/bunker/id/1";
