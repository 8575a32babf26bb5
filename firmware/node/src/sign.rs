//! Signatures between boxes: contracts (both sides sign the same terms) and
//! store receipts (the host signs the root it computed). Each message starts
//! with its own domain label, so a signature made for one purpose can never
//! be replayed as another.
//!
//! Boxes use ed25519 identities, whose PeerId embeds the public key: the key
//! that checks a peer's signature comes from its noise-authenticated PeerId,
//! never from anything the peer sends alongside.

use bunker_core::Keys;
use bunker_net::{ContractTerms, Id32, PeerId};
use libp2p_identity::PublicKey;

/// v3: the terms end with the owner label (length-prefixed), so a host
/// cannot swap the label it gives back for another.
const CONTRACT_LABEL: &[u8] = b"bunker contract terms v3\0";
const RECEIPT_LABEL: &[u8] = b"bunker store receipt v1\0";
const RELEASE_LABEL: &[u8] = b"bunker contract release v1\0";
const LN_NODE_ID_LABEL: &[u8] = b"bunker lightning node id v1\0";

/// Why a signature was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    /// The PeerId does not embed an ed25519 key (not a bunker box).
    #[error("peer {0} has no inline public key")]
    NoKey(PeerId),
    /// The signature does not verify.
    #[error("bad signature from {0}")]
    Bad(PeerId),
}

/// The canonical bytes of contract terms: every field, fixed order, little-endian.
fn terms_message(terms: &ContractTerms) -> Vec<u8> {
    let mut m = Vec::with_capacity(CONTRACT_LABEL.len() + 128);
    m.extend_from_slice(CONTRACT_LABEL);
    m.extend_from_slice(&terms.contract_id);
    m.extend_from_slice(&terms.object_root);
    m.extend_from_slice(&terms.object_bytes.to_le_bytes());
    m.extend_from_slice(&terms.plain_bytes.to_le_bytes());
    m.extend_from_slice(&terms.segment_size.to_le_bytes());
    m.extend_from_slice(&terms.price_msat_per_gib_day.to_le_bytes());
    m.extend_from_slice(&terms.retrieval_msat_per_gib.to_le_bytes());
    m.extend_from_slice(&terms.audit_interval_secs.0.to_le_bytes());
    m.extend_from_slice(&terms.audit_interval_secs.1.to_le_bytes());
    m.extend_from_slice(&terms.term_secs.to_le_bytes());
    m.push(terms.swap as u8);
    m.extend_from_slice(&(terms.owner_label.len() as u64).to_le_bytes());
    m.extend_from_slice(&terms.owner_label);
    m
}

fn receipt_message(contract_id: &Id32, root: &Id32) -> Vec<u8> {
    [RECEIPT_LABEL, contract_id.as_slice(), root.as_slice()].concat()
}

fn release_message(contract_id: &Id32) -> Vec<u8> {
    [RELEASE_LABEL, contract_id.as_slice()].concat()
}

fn sign(keys: &Keys, msg: &[u8]) -> Vec<u8> {
    // ed25519 signing cannot fail; an empty signature would simply not verify.
    keys.identity().sign(msg).unwrap_or_default()
}

/// The public key inside an ed25519 PeerId.
pub(crate) fn public_key(peer: &PeerId) -> Result<PublicKey, SignatureError> {
    let mh = peer.as_ref();
    if mh.code() != 0 {
        return Err(SignatureError::NoKey(*peer));
    }
    PublicKey::try_decode_protobuf(mh.digest()).map_err(|_| SignatureError::NoKey(*peer))
}

fn verify(peer: &PeerId, msg: &[u8], signature: &[u8]) -> Result<(), SignatureError> {
    if public_key(peer)?.verify(msg, signature) {
        Ok(())
    } else {
        Err(SignatureError::Bad(*peer))
    }
}

/// Our signature over contract terms (owner when proposing, host when accepting).
pub fn sign_terms(keys: &Keys, terms: &ContractTerms) -> Vec<u8> {
    sign(keys, &terms_message(terms))
}

/// Checks `peer`'s signature over contract terms.
pub fn verify_terms(peer: &PeerId, terms: &ContractTerms, signature: &[u8]) -> Result<(), SignatureError> {
    verify(peer, &terms_message(terms), signature)
}

/// The host's receipt: it holds `root` under `contract_id`.
pub fn sign_receipt(keys: &Keys, contract_id: &Id32, root: &Id32) -> Vec<u8> {
    sign(keys, &receipt_message(contract_id, root))
}

/// Checks a host's store receipt.
pub fn verify_receipt(host: &PeerId, contract_id: &Id32, root: &Id32, signature: &[u8]) -> Result<(), SignatureError> {
    verify(host, &receipt_message(contract_id, root), signature)
}

/// The owner's request to end a contract.
pub fn sign_release(keys: &Keys, contract_id: &Id32) -> Vec<u8> {
    sign(keys, &release_message(contract_id))
}

/// Checks a release request against the contract's owner.
pub fn verify_release(owner: &PeerId, contract_id: &Id32, signature: &[u8]) -> Result<(), SignatureError> {
    verify(owner, &release_message(contract_id), signature)
}

/// The host's signature over its Lightning node id, sent in offers: binds
/// the node an owner pays to the box it audits.
pub(crate) fn sign_ln_node_id(keys: &Keys, node_id: &[u8]) -> Vec<u8> {
    sign(keys, &[LN_NODE_ID_LABEL, node_id].concat())
}

/// Checks a host's signature over its Lightning node id.
#[allow(dead_code)]
pub(crate) fn verify_ln_node_id(host: &PeerId, node_id: &[u8], signature: &[u8]) -> Result<(), SignatureError> {
    verify(host, &[LN_NODE_ID_LABEL, node_id].concat(), signature)
}

/// Contract terms as MANIFEST.db keeps them (`NewContract::terms`): the wire
/// encoding (postcard), so the layout and audit bounds can be read back and
/// both signatures checked again later.
pub(crate) fn terms_record(terms: &ContractTerms) -> Vec<u8> {
    // Encoding a plain struct into a Vec cannot fail.
    postcard::to_stdvec(terms).unwrap_or_default()
}

/// Contract terms as recorded before owner labels (`/bunker/contract/1`,
/// signed as "terms v2"): still read back from older MANIFEST.db rows.
#[derive(serde::Deserialize)]
struct TermsV2 {
    contract_id: Id32,
    object_root: Id32,
    object_bytes: u64,
    plain_bytes: u64,
    segment_size: u32,
    price_msat_per_gib_day: u64,
    retrieval_msat_per_gib: u64,
    audit_interval_secs: (u64, u64),
    term_secs: u64,
    swap: bool,
}

/// Reads back [`terms_record`], and records made before owner labels (as
/// terms without a label).
pub(crate) fn terms_from_record(bytes: &[u8]) -> Result<ContractTerms, String> {
    // Current first: postcard ignores trailing bytes, so the older shape
    // would also "decode" a current record, dropping its label.
    match postcard::from_bytes::<ContractTerms>(bytes) {
        Ok(t) => Ok(t),
        Err(e) => match postcard::from_bytes::<TermsV2>(bytes) {
            Ok(t) => Ok(ContractTerms {
                contract_id: t.contract_id,
                object_root: t.object_root,
                object_bytes: t.object_bytes,
                plain_bytes: t.plain_bytes,
                segment_size: t.segment_size,
                price_msat_per_gib_day: t.price_msat_per_gib_day,
                retrieval_msat_per_gib: t.retrieval_msat_per_gib,
                audit_interval_secs: t.audit_interval_secs,
                term_secs: t.term_secs,
                swap: t.swap,
                owner_label: Vec::new(),
            }),
            Err(_) => Err(format!("recorded contract terms do not decode: {e}")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bunker_core::Seed;

    fn terms() -> ContractTerms {
        ContractTerms {
            contract_id: [1; 32],
            object_root: [2; 32],
            object_bytes: 1000,
            plain_bytes: 984,
            segment_size: 1024,
            price_msat_per_gib_day: 5,
            retrieval_msat_per_gib: 7,
            audit_interval_secs: (10, 20),
            term_secs: 86_400,
            swap: false,
            owner_label: vec![9; 200],
        }
    }

    #[test]
    fn terms_signed_by_one_box_verify_under_its_peer_id_only() {
        let a = Keys::from_seed(&Seed::generate());
        let b = Keys::from_seed(&Seed::generate());
        let sig = sign_terms(&a, &terms());
        verify_terms(&a.peer_id(), &terms(), &sig).expect("own signature verifies");
        assert!(verify_terms(&b.peer_id(), &terms(), &sig).is_err());
        let mut changed = terms();
        changed.price_msat_per_gib_day += 1;
        assert!(verify_terms(&a.peer_id(), &changed, &sig).is_err());
        let mut changed = terms();
        changed.segment_size *= 2;
        assert!(verify_terms(&a.peer_id(), &changed, &sig).is_err(), "the layout is signed too");
        let mut changed = terms();
        changed.owner_label[0] ^= 1;
        assert!(verify_terms(&a.peer_id(), &changed, &sig).is_err(), "the owner label is signed too");
        let mut changed = terms();
        changed.owner_label.clear();
        assert!(verify_terms(&a.peer_id(), &changed, &sig).is_err(), "a dropped label is caught");
    }

    #[test]
    fn a_record_from_before_labels_reads_back_without_one() {
        #[derive(serde::Serialize)]
        struct V2 {
            contract_id: Id32,
            object_root: Id32,
            object_bytes: u64,
            plain_bytes: u64,
            segment_size: u32,
            price_msat_per_gib_day: u64,
            retrieval_msat_per_gib: u64,
            audit_interval_secs: (u64, u64),
            term_secs: u64,
            swap: bool,
        }
        let t = terms();
        let old = postcard::to_stdvec(&V2 {
            contract_id: t.contract_id,
            object_root: t.object_root,
            object_bytes: t.object_bytes,
            plain_bytes: t.plain_bytes,
            segment_size: t.segment_size,
            price_msat_per_gib_day: t.price_msat_per_gib_day,
            retrieval_msat_per_gib: t.retrieval_msat_per_gib,
            audit_interval_secs: t.audit_interval_secs,
            term_secs: t.term_secs,
            swap: t.swap,
        })
        .unwrap();
        let back = terms_from_record(&old).expect("a v2 record decodes");
        assert_eq!(back, ContractTerms { owner_label: Vec::new(), ..t });
    }

    #[test]
    fn terms_record_round_trips_and_ln_node_id_binds_to_the_box() {
        assert_eq!(terms_from_record(&terms_record(&terms())).unwrap(), terms());
        assert!(terms_from_record(&[1, 2, 3]).is_err());
        let a = Keys::from_seed(&Seed::generate());
        let b = Keys::from_seed(&Seed::generate());
        let sig = sign_ln_node_id(&a, &[2; 33]);
        verify_ln_node_id(&a.peer_id(), &[2; 33], &sig).expect("verifies");
        assert!(verify_ln_node_id(&b.peer_id(), &[2; 33], &sig).is_err());
        assert!(verify_ln_node_id(&a.peer_id(), &[3; 33], &sig).is_err());
    }

    #[test]
    fn a_receipt_is_not_a_release() {
        let a = Keys::from_seed(&Seed::generate());
        let sig = sign_receipt(&a, &[1; 32], &[2; 32]);
        verify_receipt(&a.peer_id(), &[1; 32], &[2; 32], &sig).expect("receipt verifies");
        assert!(verify_release(&a.peer_id(), &[1; 32], &sig).is_err());
    }
}
