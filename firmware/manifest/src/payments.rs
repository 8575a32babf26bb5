//! The payment ledger: every Lightning payment in or out, keyed by ldk-node's
//! payment id so that asynchronous outcome events find their row.

use rusqlite::{params, OptionalExtension};

use crate::db::{hash32, is_unique_violation, parse_enum, sql, sqlf, to_i64, to_u64, Manifest};
use crate::error::QueryError;
use crate::files::{contract_row, hex32};
use crate::types::{
    ContractId, NewPayment, PaymentDirection, PaymentId, PaymentRecord, PaymentState, UnixSecs,
};

/// Longest failure reason kept.
pub const MAX_REASON_LEN: usize = 1024;

const PAYMENT_COLUMNS: &str =
    "p.payment_id, p.direction, p.amount_msat, p.fee_msat, c.contract_id, \
     p.payment_hash, p.state, p.reason, p.created_at, p.updated_at";

impl Manifest {
    /// Records a payment as pending, when it is sent or first announced.
    pub fn insert_payment(&mut self, p: &NewPayment) -> Result<(), QueryError> {
        let what = format!("payment {}", hex32(&p.id.0));
        let contract = p
            .contract
            .as_ref()
            .map(|c| contract_row(&self.conn, c))
            .transpose()?;
        let res = self.conn.execute(
            "INSERT INTO payments (direction, amount_msat, contract_id, payment_hash, payment_id, \
             state, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?6)",
            params![
                p.direction.as_str(),
                to_i64("amount_msat", p.amount_msat)?,
                contract,
                p.payment_hash.as_ref().map(|h| &h[..]),
                &p.id.0[..],
                p.created_at
            ],
        );
        match res {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(QueryError::AlreadyExists { what }),
            Err(e) => Err(QueryError::Sqlite {
                what: format!("insert {what}"),
                source: e,
            }),
        }
    }

    /// Records a payment's outcome. Only pending → succeeded and pending →
    /// failed are allowed; repeating the same final state is a no-op, because
    /// Lightning events can be delivered twice after a restart.
    pub fn finish_payment(
        &mut self,
        id: &PaymentId,
        state: PaymentState,
        fee_msat: Option<u64>,
        reason: &str,
        at: UnixSecs,
    ) -> Result<(), QueryError> {
        let what = format!("payment {}", hex32(&id.0));
        if reason.len() > MAX_REASON_LEN {
            return Err(QueryError::InvalidValue {
                field: "reason",
                reason: format!("{} bytes exceeds {MAX_REASON_LEN}", reason.len()),
            });
        }
        let fee = fee_msat.map(|f| to_i64("fee_msat", f)).transpose()?;
        let tx = self
            .conn
            .transaction()
            .map_err(sql("begin finish_payment"))?;
        let current: Option<String> = tx
            .query_row(
                "SELECT state FROM payments WHERE payment_id = ?1",
                [&id.0[..]],
                |r| r.get(0),
            )
            .optional()
            .map_err(sqlf(|| format!("read {what}")))?;
        let current = current.ok_or_else(|| QueryError::NotFound { what: what.clone() })?;
        let current = parse_enum(&what, "state", &current, PaymentState::parse)?;
        if current == state && state != PaymentState::Pending {
            return Ok(());
        }
        if current != PaymentState::Pending || state == PaymentState::Pending {
            return Err(QueryError::InvalidTransition {
                what,
                from: current.to_string(),
                to: state.to_string(),
            });
        }
        tx.execute(
            "UPDATE payments SET state = ?2, fee_msat = coalesce(?3, fee_msat), reason = ?4, \
             updated_at = ?5 WHERE payment_id = ?1",
            params![&id.0[..], state.as_str(), fee, reason, at],
        )
        .map_err(sqlf(|| format!("update {what}")))?;
        tx.commit().map_err(sqlf(|| format!("commit {what}")))?;
        Ok(())
    }

    /// One payment.
    pub fn payment(&self, id: &PaymentId) -> Result<Option<PaymentRecord>, QueryError> {
        let q = format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments p LEFT JOIN contracts c ON c.id = p.contract_id \
             WHERE p.payment_id = ?1"
        );
        let mut v = self.query_payments(&q, params![&id.0[..]])?;
        Ok(v.pop())
    }

    /// Payments newest first, optionally only those older than `before` (paging).
    pub fn payments(
        &self,
        before: Option<UnixSecs>,
        limit: u32,
    ) -> Result<Vec<PaymentRecord>, QueryError> {
        let q = format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments p LEFT JOIN contracts c ON c.id = p.contract_id \
             WHERE p.created_at < ?1 ORDER BY p.created_at DESC, p.id DESC LIMIT ?2"
        );
        self.query_payments(&q, params![before.unwrap_or(i64::MAX), limit])
    }

    /// Payments settling one contract, oldest first.
    pub fn payments_for_contract(
        &self,
        contract: &ContractId,
    ) -> Result<Vec<PaymentRecord>, QueryError> {
        let cid = contract_row(&self.conn, contract)?;
        let q = format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments p LEFT JOIN contracts c ON c.id = p.contract_id \
             WHERE p.contract_id = ?1 ORDER BY p.created_at, p.id"
        );
        self.query_payments(&q, params![cid])
    }

    /// Payments still pending (to reconcile with the Lightning node after a restart).
    pub fn pending_payments(&self) -> Result<Vec<PaymentRecord>, QueryError> {
        let q = format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments p LEFT JOIN contracts c ON c.id = p.contract_id \
             WHERE p.state = 'pending' ORDER BY p.created_at, p.id"
        );
        self.query_payments(&q, [])
    }

    /// Sum of succeeded payments in one direction (admin page totals), fees excluded.
    pub fn payments_total_msat(&self, direction: PaymentDirection) -> Result<u64, QueryError> {
        let total: i64 = self
            .conn
            .query_row(
                "SELECT coalesce(sum(amount_msat), 0) FROM payments WHERE direction = ?1 AND state = 'succeeded'",
                [direction.as_str()],
                |r| r.get(0),
            )
            .map_err(sql("sum payments"))?;
        to_u64("payments", "amount_msat", total)
    }

    fn query_payments(
        &self,
        q: &str,
        p: impl rusqlite::Params,
    ) -> Result<Vec<PaymentRecord>, QueryError> {
        let mut stmt = self
            .conn
            .prepare_cached(q)
            .map_err(sql("prepare payment query"))?;
        let raws = stmt
            .query_map(p, |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                    r.get::<_, Option<Vec<u8>>>(4)?,
                    r.get::<_, Option<Vec<u8>>>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, String>(7)?,
                    r.get::<_, i64>(8)?,
                    r.get::<_, i64>(9)?,
                ))
            })
            .and_then(|r| r.collect::<Result<Vec<_>, _>>())
            .map_err(sql("read payments"))?;
        raws.into_iter()
            .map(
                |(id, dir, amount, fee, contract, hash, state, reason, created, updated)| {
                    let id = hash32("payment", "payment_id", id)?;
                    let what = format!("payment {}", hex32(&id));
                    Ok(PaymentRecord {
                        id: PaymentId(id),
                        direction: parse_enum(&what, "direction", &dir, PaymentDirection::parse)?,
                        amount_msat: to_u64(&what, "amount_msat", amount)?,
                        fee_msat: fee.map(|f| to_u64(&what, "fee_msat", f)).transpose()?,
                        contract: contract
                            .map(|c| hash32(&what, "contract_id", c).map(ContractId))
                            .transpose()?,
                        payment_hash: hash.map(|h| hash32(&what, "payment_hash", h)).transpose()?,
                        state: parse_enum(&what, "state", &state, PaymentState::parse)?,
                        reason,
                        created_at: created,
                        updated_at: updated,
                    })
                },
            )
            .collect()
    }
}
