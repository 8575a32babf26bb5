//! Contracts in both directions, kept with their signed terms as evidence, and
//! the amount owed on each between settlements.

use libp2p_identity::PeerId;
use rusqlite::{params, OptionalExtension, Transaction};

use crate::db::{
    hash32, is_unique_violation, parse_enum, parse_peer, sql, sqlf, to_i64, to_u64, Manifest,
};
use crate::error::QueryError;
use crate::files::{ensure_peer, hex32};
use crate::types::{
    ContractDirection, ContractId, ContractRecord, ContractState, NewContract, UnixSecs,
};

/// Largest encoded terms or signature kept; contracts come from peers.
pub const MAX_TERMS_LEN: usize = 16 * 1024;
/// Largest owner label kept with a hosted contract (the schema checks it too).
pub const MAX_OWNER_LABEL_LEN: usize = 1024;

/// A contract we host an object under, as its owner may ask for it back
/// when it has lost its manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldContract {
    /// The contract with its recorded terms and both signatures.
    pub contract: ContractRecord,
    /// The owner's sealed label, opaque to us.
    pub owner_label: Vec<u8>,
    /// Root of the object we store under it (computed when it arrived).
    pub stored_root: crate::types::Hash32,
}

const CONTRACT_COLUMNS: &str = "contract_id, direction, \
     (SELECT peer_id FROM peers WHERE peers.id = contracts.peer), object_root, size_bytes, \
     price_msat_per_gib_day, retrieval_price_msat, audit_interval_secs, full_check_interval_secs, \
     is_swap, term_start_at, term_end_at, terms, our_signature, peer_signature, created_at, \
     state, owed_msat, last_paid_at, ended_at";

impl Manifest {
    /// Records a newly concluded contract as active.
    pub fn insert_contract(&mut self, c: &NewContract) -> Result<(), QueryError> {
        let tx = self
            .conn
            .transaction()
            .map_err(sql("begin insert_contract"))?;
        insert_contract_tx(&tx, c)?;
        tx.commit()
            .map_err(sqlf(|| format!("commit contract {}", hex32(&c.id.0))))?;
        Ok(())
    }

    /// Records a contract we accepted to host, with the owner's label, in
    /// one transaction (the label is what the owner asks back for when its
    /// manifest is lost; see [`Manifest::held_for_owner`]).
    pub fn insert_contract_with_label(&mut self, c: &NewContract, owner_label: &[u8]) -> Result<(), QueryError> {
        if owner_label.len() > MAX_OWNER_LABEL_LEN {
            return Err(QueryError::InvalidValue {
                field: "owner_label",
                reason: format!("{} bytes exceeds {MAX_OWNER_LABEL_LEN}", owner_label.len()),
            });
        }
        let tx = self
            .conn
            .transaction()
            .map_err(sql("begin insert_contract_with_label"))?;
        insert_contract_tx(&tx, c)?;
        if !owner_label.is_empty() {
            tx.execute(
                "UPDATE contracts SET owner_label = ?2 WHERE contract_id = ?1",
                params![&c.id.0[..], owner_label],
            )
            .map_err(sqlf(|| format!("label contract {}", hex32(&c.id.0))))?;
        }
        tx.commit()
            .map_err(sqlf(|| format!("commit contract {}", hex32(&c.id.0))))?;
        Ok(())
    }

    /// One page of the live, labelled contracts we host for `owner` whose
    /// object has arrived, in contract id order after `after`: what
    /// `/bunker/holdings/1` answers the owner (and only the owner) with.
    pub fn held_for_owner(
        &self,
        owner: &PeerId,
        after: Option<&ContractId>,
        limit: u32,
    ) -> Result<Vec<HeldContract>, QueryError> {
        let q = format!(
            "SELECT {CONTRACT_COLUMNS}, owner_label, stored_root FROM ( \
               SELECT *, (SELECT h.root FROM hosted_objects h \
                          WHERE h.contract_id = contracts.id AND h.state = 'stored' LIMIT 1) AS stored_root \
               FROM contracts \
               WHERE peer = (SELECT id FROM peers WHERE peer_id = ?1) \
                 AND direction = 'theirs_on_us' AND owner_label IS NOT NULL \
                 AND state IN ('active', 'ending') AND contract_id > ?2 \
               ORDER BY contract_id) AS contracts \
             WHERE stored_root IS NOT NULL ORDER BY contract_id LIMIT ?3"
        );
        let after: &[u8] = after.map(|a| &a.0[..]).unwrap_or(&[]);
        let mut stmt = self
            .conn
            .prepare_cached(&q)
            .map_err(sql("prepare held_for_owner"))?;
        let rows = stmt
            .query_map(params![owner.to_base58(), after, limit], |r| {
                Ok((raw_contract(r)?, r.get::<_, Vec<u8>>(20)?, r.get::<_, Vec<u8>>(21)?))
            })
            .and_then(|r| r.collect::<Result<Vec<_>, _>>())
            .map_err(sqlf(|| format!("list contracts held for {owner}")))?;
        rows.into_iter()
            .map(|(raw, owner_label, root)| {
                let contract = finish_contract(raw)?;
                let what = format!("contract {}", hex32(&contract.contract.id.0));
                Ok(HeldContract { stored_root: hash32(&what, "hosted root", root)?, contract, owner_label })
            })
            .collect()
    }

    /// One contract.
    pub fn contract(&self, id: &ContractId) -> Result<Option<ContractRecord>, QueryError> {
        let q = format!("SELECT {CONTRACT_COLUMNS} FROM contracts WHERE contract_id = ?1");
        let raw = self
            .conn
            .prepare_cached(&q)
            .and_then(|mut s| s.query_row([&id.0[..]], raw_contract).optional())
            .map_err(sqlf(|| format!("read contract {}", hex32(&id.0))))?;
        raw.map(finish_contract).transpose()
    }

    /// Contracts in one direction and state (e.g. our active ones, for audits).
    pub fn contracts(
        &self,
        direction: ContractDirection,
        state: ContractState,
    ) -> Result<Vec<ContractRecord>, QueryError> {
        let q = format!(
            "SELECT {CONTRACT_COLUMNS} FROM contracts WHERE state = ?1 AND direction = ?2 ORDER BY id"
        );
        self.query_contracts(&q, params![state.as_str(), direction.as_str()])
    }

    /// Active contracts whose term ends before `before` (renewal or release), soonest first.
    pub fn contracts_ending_before(
        &self,
        before: UnixSecs,
    ) -> Result<Vec<ContractRecord>, QueryError> {
        let q = format!(
            "SELECT {CONTRACT_COLUMNS} FROM contracts WHERE state = 'active' AND term_end_at < ?1 \
             ORDER BY term_end_at, id"
        );
        self.query_contracts(&q, params![before])
    }

    /// Every contract with one peer, both directions (swap balance, peer page).
    pub fn contracts_with_peer(&self, peer: &PeerId) -> Result<Vec<ContractRecord>, QueryError> {
        let q = format!(
            "SELECT {CONTRACT_COLUMNS} FROM contracts \
             WHERE peer = (SELECT id FROM peers WHERE peer_id = ?1) ORDER BY id"
        );
        self.query_contracts(&q, params![peer.to_base58()])
    }

    fn query_contracts(
        &self,
        q: &str,
        p: impl rusqlite::Params,
    ) -> Result<Vec<ContractRecord>, QueryError> {
        let mut stmt = self
            .conn
            .prepare_cached(q)
            .map_err(sql("prepare contract query"))?;
        let raws = stmt
            .query_map(p, raw_contract)
            .and_then(|r| r.collect::<Result<Vec<_>, _>>())
            .map_err(sql("list contracts"))?;
        raws.into_iter().map(finish_contract).collect()
    }

    /// Moves a contract to `state`; `at` is recorded as the end time for ended or broken.
    ///
    /// Ended and broken are final: moving such a contract back to active or
    /// ending changes nothing (and is not an error), and its first end time
    /// is kept. Two releases of one contract can overlap — the repair
    /// worker retries every `ending` contract while a removal or policy
    /// change is ending the same one — and the late one must not reopen a
    /// contract the other already ended.
    pub fn set_contract_state(
        &mut self,
        id: &ContractId,
        state: ContractState,
        at: UnixSecs,
    ) -> Result<(), QueryError> {
        let what = format!("contract {}", hex32(&id.0));
        let ends = matches!(state, ContractState::Ended | ContractState::Broken);
        let n = self
            .conn
            .execute(
                "UPDATE contracts SET state = ?2, \
                 ended_at = CASE WHEN ?3 AND state NOT IN ('ended', 'broken') THEN ?4 ELSE ended_at END \
                 WHERE contract_id = ?1 AND (?3 OR state NOT IN ('ended', 'broken'))",
                params![&id.0[..], state.as_str(), ends, at],
            )
            .map_err(sqlf(|| format!("set state of {what}")))?;
        if n == 0 {
            let exists: bool = self
                .conn
                .query_row("SELECT EXISTS(SELECT 1 FROM contracts WHERE contract_id = ?1)", params![&id.0[..]], |r| r.get(0))
                .map_err(sqlf(|| format!("look up {what}")))?;
            if !exists {
                return Err(QueryError::NotFound { what });
            }
        }
        Ok(())
    }

    /// Adds to the amount owed on a contract since the last settlement; returns the new total.
    pub fn accrue_owed(&mut self, id: &ContractId, msat: u64) -> Result<u64, QueryError> {
        let what = format!("contract {}", hex32(&id.0));
        let add = to_i64("msat", msat)?;
        let total: Option<i64> = self
            .conn
            .query_row(
                "UPDATE contracts SET owed_msat = owed_msat + ?2 WHERE contract_id = ?1 RETURNING owed_msat",
                params![&id.0[..], add],
                |r| r.get(0),
            )
            .optional()
            .map_err(sqlf(|| format!("accrue on {what}")))?;
        let total = total.ok_or(QueryError::NotFound { what: what.clone() })?;
        to_u64(&what, "owed_msat", total)
    }

    /// Takes `msat` off the amount owed after a payment succeeded (never below zero).
    pub fn settle_owed(
        &mut self,
        id: &ContractId,
        msat: u64,
        at: UnixSecs,
    ) -> Result<u64, QueryError> {
        let what = format!("contract {}", hex32(&id.0));
        let sub = to_i64("msat", msat)?;
        let total: Option<i64> = self
            .conn
            .query_row(
                "UPDATE contracts SET owed_msat = max(owed_msat - ?2, 0), last_paid_at = ?3 \
                 WHERE contract_id = ?1 RETURNING owed_msat",
                params![&id.0[..], sub, at],
                |r| r.get(0),
            )
            .optional()
            .map_err(sqlf(|| format!("settle on {what}")))?;
        let total = total.ok_or(QueryError::NotFound { what: what.clone() })?;
        to_u64(&what, "owed_msat", total)
    }
}

/// Inserts a contract as active inside the caller's transaction.
pub(crate) fn insert_contract_tx(tx: &Transaction<'_>, c: &NewContract) -> Result<(), QueryError> {
    let what = format!("contract {}", hex32(&c.id.0));
    for (field, len) in [
        ("terms", c.terms.len()),
        ("our_signature", c.our_signature.len()),
        ("peer_signature", c.peer_signature.len()),
    ] {
        if len > MAX_TERMS_LEN {
            return Err(QueryError::InvalidValue {
                field,
                reason: format!("{len} bytes exceeds {MAX_TERMS_LEN}"),
            });
        }
    }
    if c.audit_interval_secs == 0 || c.full_check_interval_secs == 0 {
        return Err(QueryError::InvalidValue {
            field: "audit interval",
            reason: "must be > 0".into(),
        });
    }
    if c.term_end_at < c.term_start_at {
        return Err(QueryError::InvalidValue {
            field: "term_end_at",
            reason: format!("{} is before term start {}", c.term_end_at, c.term_start_at),
        });
    }
    let peer = ensure_peer(tx, &c.peer, c.created_at)?;
    let res = tx.execute(
        "INSERT INTO contracts (contract_id, direction, peer, object_root, size_bytes, \
         price_msat_per_gib_day, retrieval_price_msat, audit_interval_secs, \
         full_check_interval_secs, is_swap, term_start_at, term_end_at, terms, our_signature, \
         peer_signature, created_at, state) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, 'active')",
        params![
            &c.id.0[..],
            c.direction.as_str(),
            peer,
            &c.object_root[..],
            to_i64("size_bytes", c.size_bytes)?,
            to_i64("price_msat_per_gib_day", c.price_msat_per_gib_day)?,
            to_i64("retrieval_price_msat", c.retrieval_price_msat)?,
            to_i64("audit_interval_secs", c.audit_interval_secs)?,
            to_i64("full_check_interval_secs", c.full_check_interval_secs)?,
            c.is_swap,
            c.term_start_at,
            c.term_end_at,
            c.terms,
            c.our_signature,
            c.peer_signature,
            c.created_at
        ],
    );
    match res {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => return Err(QueryError::AlreadyExists { what }),
        Err(e) => {
            return Err(QueryError::Sqlite {
                what: format!("insert {what}"),
                source: e,
            })
        }
    }
    Ok(())
}

struct RawContract {
    id: Vec<u8>,
    direction: String,
    peer: String,
    root: Vec<u8>,
    ints: [i64; 6],
    is_swap: bool,
    term_start: i64,
    term_end: i64,
    terms: Vec<u8>,
    our_sig: Vec<u8>,
    peer_sig: Vec<u8>,
    created: i64,
    state: String,
    last_paid: Option<i64>,
    ended: Option<i64>,
}

fn raw_contract(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawContract> {
    Ok(RawContract {
        id: r.get(0)?,
        direction: r.get(1)?,
        peer: r.get(2)?,
        root: r.get(3)?,
        ints: [
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
            r.get(7)?,
            r.get(8)?,
            r.get(17)?,
        ],
        is_swap: r.get(9)?,
        term_start: r.get(10)?,
        term_end: r.get(11)?,
        terms: r.get(12)?,
        our_sig: r.get(13)?,
        peer_sig: r.get(14)?,
        created: r.get(15)?,
        state: r.get(16)?,
        last_paid: r.get(18)?,
        ended: r.get(19)?,
    })
}

fn finish_contract(r: RawContract) -> Result<ContractRecord, QueryError> {
    let id = hash32("contract", "contract_id", r.id)?;
    let what = format!("contract {}", hex32(&id));
    Ok(ContractRecord {
        contract: NewContract {
            id: ContractId(id),
            direction: parse_enum(&what, "direction", &r.direction, ContractDirection::parse)?,
            peer: parse_peer(&what, "peer", &r.peer)?,
            object_root: hash32(&what, "object_root", r.root)?,
            size_bytes: to_u64(&what, "size_bytes", r.ints[0])?,
            price_msat_per_gib_day: to_u64(&what, "price_msat_per_gib_day", r.ints[1])?,
            retrieval_price_msat: to_u64(&what, "retrieval_price_msat", r.ints[2])?,
            audit_interval_secs: to_u64(&what, "audit_interval_secs", r.ints[3])?,
            full_check_interval_secs: to_u64(&what, "full_check_interval_secs", r.ints[4])?,
            is_swap: r.is_swap,
            term_start_at: r.term_start,
            term_end_at: r.term_end,
            terms: r.terms,
            our_signature: r.our_sig,
            peer_signature: r.peer_sig,
            created_at: r.created,
        },
        state: parse_enum(&what, "state", &r.state, ContractState::parse)?,
        owed_msat: to_u64(&what, "owed_msat", r.ints[5])?,
        last_paid_at: r.last_paid,
        ended_at: r.ended,
    })
}
