//! bunker-ln's own small SQLite file: the payment ledger as ldk-node's events
//! built it, the amounts owed per contract, and which payment settled what.
//!
//! It lives beside ldk-node's state so the two are backed up and restored
//! together, and so amounts owed survive while the node cannot run (chain
//! source down, crash, restart). Each change is one transaction: an amount
//! leaves `owed` only in the same transaction that records the settlement
//! payment carrying it, and comes back in the one that records its failure.

use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use crate::ledger::{ContractId, Direction, Method, PaymentRecord, Status};

/// The file name under the Lightning data dir.
pub const STORE_FILE: &str = "bunker-ln.sqlite";

/// The most that can be owed or paid in one go: all bitcoin there will ever
/// be, in millisatoshi. Anything above is a bug or an attack, not a price.
pub const MAX_MSAT: u64 = 21_000_000 * 100_000_000 * 1_000;

const SCHEMA_VERSION: i64 = 1;

/// The store could not read or write.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite said no.
    #[error("payment store {path}: {source}")]
    Sqlite {
        /// The database file.
        path: String,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The file was written by a newer bunker-ln.
    #[error("payment store {path} has schema version {found}, this build knows up to {SCHEMA_VERSION}")]
    TooNew {
        /// The database file.
        path: String,
        /// Its version.
        found: i64,
    },
    /// A row holds something this build cannot read (edited by hand?).
    #[error("payment store {path}: row {row} is corrupt: {what}")]
    Corrupt {
        /// The database file.
        path: String,
        /// Which row.
        row: String,
        /// What is wrong with it.
        what: String,
    },
}

/// Why an amount could not be added to what a contract is owed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OweError {
    /// Zero owes nothing: probably a bug in the caller's arithmetic.
    #[error("contract {contract}: an amount owed must be more than 0 msat")]
    Zero {
        /// The contract.
        contract: ContractId,
    },
    /// The amount, or the total it makes, is not a possible amount of bitcoin.
    #[error("contract {contract}: owing {amount_msat} msat more would exceed {MAX_MSAT} msat")]
    TooLarge {
        /// The contract.
        contract: ContractId,
        /// The amount added.
        amount_msat: u64,
    },
    /// The contract is already owed to another node: a contract has one host.
    #[error("contract {contract} is owed to node {known}, not to {given}")]
    OtherPayee {
        /// The contract.
        contract: ContractId,
        /// The payee on record.
        known: String,
        /// The payee given now.
        given: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one contract is owed right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owed {
    /// The contract.
    pub contract: ContractId,
    /// The host's Lightning node id, hex.
    pub payee: String,
    /// Not yet sent, in millisatoshi.
    pub owed_msat: u64,
    /// Sent in settlement payments that have not resolved yet.
    pub in_flight_msat: u64,
}

/// A settlement that has been taken out of `owed` and must now be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Settlement {
    pub payment_id: String,
    pub contract: ContractId,
    pub payee: String,
    pub amount_msat: u64,
}

pub(crate) struct Store {
    conn: Mutex<Connection>,
    path: String,
}

pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn to_i64(v: u64) -> i64 {
    // Every amount is checked against MAX_MSAT (< i64::MAX) before it gets here.
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Store {
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let path = dir.join(STORE_FILE);
        let path_s = path.display().to_string();
        let err = |source| StoreError::Sqlite {
            path: path_s.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(|e| {
            err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
                Some(format!("cannot create {}: {e}", dir.display())),
            ))
        })?;
        let conn = Connection::open(&path).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(err)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(err)?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(err)?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                path: path_s,
                found: version,
            });
        }
        if version < 1 {
            conn.execute_batch(
                "BEGIN;
                 CREATE TABLE IF NOT EXISTS payments (
                    id TEXT PRIMARY KEY,
                    direction TEXT NOT NULL,
                    method TEXT NOT NULL,
                    contract TEXT,
                    counterparty TEXT,
                    amount_msat INTEGER,
                    fee_msat INTEGER,
                    status TEXT NOT NULL,
                    failure TEXT,
                    updated_at INTEGER NOT NULL);
                 CREATE TABLE IF NOT EXISTS owed (
                    contract TEXT PRIMARY KEY,
                    payee TEXT NOT NULL,
                    owed_msat INTEGER NOT NULL CHECK (owed_msat >= 0),
                    updated_at INTEGER NOT NULL);
                 CREATE TABLE IF NOT EXISTS settlements (
                    payment_id TEXT PRIMARY KEY,
                    contract TEXT NOT NULL,
                    payee TEXT NOT NULL,
                    amount_msat INTEGER NOT NULL CHECK (amount_msat > 0),
                    state TEXT NOT NULL,
                    created_at INTEGER NOT NULL);
                 PRAGMA user_version = 1;
                 COMMIT;",
            )
            .map_err(err)?;
        }
        Ok(Store {
            conn: Mutex::new(conn),
            path: path_s,
        })
    }

    fn sqlite(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (every
        // change is a transaction), so a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Inserts or merges `rec` and returns the record as stored. A payment
    /// that already succeeded or failed keeps its outcome; fields the new
    /// record does not know keep their old values. When the payment settles
    /// a contract, the settlement follows it: a failure gives the amount back
    /// to what the contract is owed.
    pub fn apply(&self, rec: &PaymentRecord) -> Result<PaymentRecord, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(|e| self.sqlite(e))?;
        let merged = match self.get_tx(&tx, &rec.id)? {
            None => rec.clone(),
            Some(old) => merge(&old, rec),
        };
        tx.execute(
            "INSERT INTO payments (id, direction, method, contract, counterparty, amount_msat,
                                   fee_msat, status, failure, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT(id) DO UPDATE SET direction = ?2, method = ?3, contract = ?4,
                counterparty = ?5, amount_msat = ?6, fee_msat = ?7, status = ?8, failure = ?9,
                updated_at = ?10",
            params![
                merged.id,
                merged.direction.as_str(),
                merged.method.as_str(),
                merged.contract.map(|c| c.to_string()),
                merged.counterparty,
                merged.amount_msat.map(to_i64),
                merged.fee_msat.map(to_i64),
                merged.status.as_str(),
                merged.failure,
                to_i64(merged.updated_at),
            ],
        )
        .map_err(|e| self.sqlite(e))?;
        if merged.status != Status::Pending {
            self.resolve_settlement_tx(&tx, &merged.id, merged.status)?;
        }
        tx.commit().map_err(|e| self.sqlite(e))?;
        Ok(merged)
    }

    fn resolve_settlement_tx(&self, tx: &Transaction<'_>, id: &str, status: Status) -> Result<(), StoreError> {
        let row: Option<(String, String, i64, String)> = tx
            .query_row(
                "SELECT contract, payee, amount_msat, state FROM settlements WHERE payment_id = ?1",
                params![id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()
            .map_err(|e| self.sqlite(e))?;
        let Some((contract, payee, amount, state)) = row else {
            return Ok(());
        };
        if state == "succeeded" || state == "failed" {
            return Ok(());
        }
        tx.execute(
            "UPDATE settlements SET state = ?2 WHERE payment_id = ?1",
            params![id, status.as_str()],
        )
        .map_err(|e| self.sqlite(e))?;
        if status == Status::Failed {
            // Nothing was paid: the host is owed it again.
            tx.execute(
                "INSERT INTO owed (contract, payee, owed_msat, updated_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(contract) DO UPDATE SET owed_msat = owed_msat + ?3, updated_at = ?4",
                params![contract, payee, amount, to_i64(now_secs())],
            )
            .map_err(|e| self.sqlite(e))?;
        }
        Ok(())
    }

    fn get_tx(&self, conn: &Connection, id: &str) -> Result<Option<PaymentRecord>, StoreError> {
        conn.query_row(
            "SELECT id, direction, method, contract, counterparty, amount_msat, fee_msat, status,
                    failure, updated_at FROM payments WHERE id = ?1",
            params![id],
            row_to_raw,
        )
        .optional()
        .map_err(|e| self.sqlite(e))?
        .map(|raw| self.decode(raw))
        .transpose()
    }

    pub fn get(&self, id: &str) -> Result<Option<PaymentRecord>, StoreError> {
        let conn = self.lock();
        self.get_tx(&conn, id)
    }

    pub fn payments(&self) -> Result<Vec<PaymentRecord>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare(
                "SELECT id, direction, method, contract, counterparty, amount_msat, fee_msat,
                        status, failure, updated_at FROM payments ORDER BY updated_at, id",
            )
            .map_err(|e| self.sqlite(e))?;
        let raws = stmt
            .query_map([], row_to_raw)
            .map_err(|e| self.sqlite(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.sqlite(e))?;
        raws.into_iter().map(|r| self.decode(r)).collect()
    }

    fn decode(&self, raw: RawRow) -> Result<PaymentRecord, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt {
            path: self.path.clone(),
            row: raw.id.clone(),
            what: what.to_string(),
        };
        Ok(PaymentRecord {
            direction: Direction::parse(&raw.direction).ok_or_else(|| corrupt("direction"))?,
            method: Method::parse(&raw.method).ok_or_else(|| corrupt("method"))?,
            contract: match &raw.contract {
                Some(c) => Some(c.parse().map_err(|_| corrupt("contract"))?),
                None => None,
            },
            counterparty: raw.counterparty.clone(),
            amount_msat: raw.amount_msat.map(|v| v as u64),
            fee_msat: raw.fee_msat.map(|v| v as u64),
            status: Status::parse(&raw.status).ok_or_else(|| corrupt("status"))?,
            failure: raw.failure.clone(),
            updated_at: raw.updated_at as u64,
            id: raw.id,
        })
    }

    /// Adds `amount_msat` to what `contract` owes `payee`; returns the new
    /// total not yet sent.
    pub fn owe(&self, contract: ContractId, payee: &str, amount_msat: u64) -> Result<u64, OweError> {
        if amount_msat == 0 {
            return Err(OweError::Zero { contract });
        }
        if amount_msat > MAX_MSAT {
            return Err(OweError::TooLarge { contract, amount_msat });
        }
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(|e| self.sqlite(e))?;
        let key = contract.to_string();
        let row: Option<(String, i64)> = tx
            .query_row(
                "SELECT payee, owed_msat FROM owed WHERE contract = ?1",
                params![key],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.sqlite(e))?;
        let known_payee: Option<String> = match &row {
            Some((p, _)) => Some(p.clone()),
            None => tx
                .query_row(
                    "SELECT payee FROM settlements WHERE contract = ?1 LIMIT 1",
                    params![key],
                    |r| r.get(0),
                )
                .optional()
                .map_err(|e| self.sqlite(e))?,
        };
        if let Some(known) = known_payee {
            if known != payee {
                return Err(OweError::OtherPayee {
                    contract,
                    known,
                    given: payee.to_string(),
                });
            }
        }
        let old = row.map(|(_, v)| v as u64).unwrap_or(0);
        let total = old
            .checked_add(amount_msat)
            .filter(|t| *t <= MAX_MSAT)
            .ok_or(OweError::TooLarge { contract, amount_msat })?;
        tx.execute(
            "INSERT INTO owed (contract, payee, owed_msat, updated_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(contract) DO UPDATE SET owed_msat = ?3, updated_at = ?4",
            params![key, payee, to_i64(total), to_i64(now_secs())],
        )
        .map_err(|e| self.sqlite(e))?;
        tx.commit().map_err(|e| self.sqlite(e))?;
        Ok(total)
    }

    /// Everything owed, one entry per contract that is owed something or
    /// has a settlement in flight.
    pub fn owed(&self) -> Result<Vec<Owed>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare(
                "SELECT c.contract, c.payee,
                        COALESCE((SELECT owed_msat FROM owed o WHERE o.contract = c.contract), 0),
                        COALESCE((SELECT SUM(amount_msat) FROM settlements s
                                  WHERE s.contract = c.contract AND s.state IN ('sending', 'pending')), 0)
                 FROM (SELECT contract, payee FROM owed
                       UNION SELECT contract, payee FROM settlements
                             WHERE state IN ('sending', 'pending')) c
                 ORDER BY c.contract",
            )
            .map_err(|e| self.sqlite(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })
            .map_err(|e| self.sqlite(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.sqlite(e))?;
        let mut out = Vec::new();
        for (contract, payee, owed, in_flight) in rows {
            if owed == 0 && in_flight == 0 {
                continue;
            }
            let contract = contract.parse().map_err(|_| StoreError::Corrupt {
                path: self.path.clone(),
                row: contract.clone(),
                what: "contract id".into(),
            })?;
            out.push(Owed {
                contract,
                payee,
                owed_msat: owed as u64,
                in_flight_msat: in_flight as u64,
            });
        }
        Ok(out)
    }

    /// Takes what `contract` is owed, if at least `threshold_msat`, out of
    /// `owed` and records it as a settlement payment `payment_id` (pending in
    /// the ledger), in one transaction.
    pub fn begin_settlement(
        &self,
        contract: ContractId,
        threshold_msat: u64,
        max_msat: u64,
        payment_id: &str,
    ) -> Result<Option<(Settlement, PaymentRecord)>, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(|e| self.sqlite(e))?;
        let key = contract.to_string();
        let row: Option<(String, i64)> = tx
            .query_row(
                "SELECT payee, owed_msat FROM owed WHERE contract = ?1",
                params![key],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.sqlite(e))?;
        let Some((payee, owed)) = row else { return Ok(None) };
        let owed = owed as u64;
        // More than one payment can carry waits for the next round.
        let amount = owed.min(max_msat);
        if owed == 0 || owed < threshold_msat || amount == 0 {
            return Ok(None);
        }
        let now = now_secs();
        tx.execute(
            "UPDATE owed SET owed_msat = ?3, updated_at = ?2 WHERE contract = ?1",
            params![key, to_i64(now), to_i64(owed - amount)],
        )
        .map_err(|e| self.sqlite(e))?;
        tx.execute(
            "INSERT INTO settlements (payment_id, contract, payee, amount_msat, state, created_at)
             VALUES (?1, ?2, ?3, ?4, 'sending', ?5)",
            params![payment_id, key, payee, to_i64(amount), to_i64(now)],
        )
        .map_err(|e| self.sqlite(e))?;
        let rec = PaymentRecord {
            id: payment_id.to_string(),
            direction: Direction::Outbound,
            method: Method::Keysend,
            contract: Some(contract),
            counterparty: Some(payee.clone()),
            amount_msat: Some(amount),
            fee_msat: None,
            status: Status::Pending,
            failure: None,
            updated_at: now,
        };
        tx.execute(
            "INSERT INTO payments (id, direction, method, contract, counterparty, amount_msat,
                                   fee_msat, status, failure, updated_at)
             VALUES (?1, 'outbound', 'keysend', ?2, ?3, ?4, NULL, 'pending', NULL, ?5)",
            params![payment_id, key, payee, to_i64(amount), to_i64(now)],
        )
        .map_err(|e| self.sqlite(e))?;
        tx.commit().map_err(|e| self.sqlite(e))?;
        Ok(Some((
            Settlement {
                payment_id: payment_id.to_string(),
                contract,
                payee,
                amount_msat: amount,
            },
            rec,
        )))
    }

    /// Marks a settlement as handed to ldk-node (so a restart asks ldk-node
    /// about it instead of assuming it was never sent).
    pub fn settlement_sent(&self, payment_id: &str) -> Result<(), StoreError> {
        let conn = self.lock();
        conn.execute(
            "UPDATE settlements SET state = 'pending' WHERE payment_id = ?1 AND state = 'sending'",
            params![payment_id],
        )
        .map_err(|e| self.sqlite(e))?;
        Ok(())
    }

    /// Settlements that were taken out of `owed` but not resolved: after a
    /// crash these are looked up in ldk-node's payment store.
    pub fn unresolved_settlements(&self) -> Result<Vec<(String, bool)>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare("SELECT payment_id, state FROM settlements WHERE state IN ('sending', 'pending')")
            .map_err(|e| self.sqlite(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)? == "pending"))
            })
            .map_err(|e| self.sqlite(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.sqlite(e))?;
        Ok(rows)
    }
}

struct RawRow {
    id: String,
    direction: String,
    method: String,
    contract: Option<String>,
    counterparty: Option<String>,
    amount_msat: Option<i64>,
    fee_msat: Option<i64>,
    status: String,
    failure: Option<String>,
    updated_at: i64,
}

fn row_to_raw(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawRow> {
    Ok(RawRow {
        id: r.get(0)?,
        direction: r.get(1)?,
        method: r.get(2)?,
        contract: r.get(3)?,
        counterparty: r.get(4)?,
        amount_msat: r.get(5)?,
        fee_msat: r.get(6)?,
        status: r.get(7)?,
        failure: r.get(8)?,
        updated_at: r.get(9)?,
    })
}

/// `new` applied over `old`: a resolved outcome is final, and a field the
/// new record leaves empty keeps what was known.
fn merge(old: &PaymentRecord, new: &PaymentRecord) -> PaymentRecord {
    if old.status != Status::Pending {
        return PaymentRecord {
            contract: old.contract.or(new.contract),
            counterparty: old.counterparty.clone().or_else(|| new.counterparty.clone()),
            amount_msat: old.amount_msat.or(new.amount_msat),
            fee_msat: old.fee_msat.or(new.fee_msat),
            ..old.clone()
        };
    }
    PaymentRecord {
        id: old.id.clone(),
        direction: old.direction,
        method: old.method,
        contract: old.contract.or(new.contract),
        counterparty: old.counterparty.clone().or_else(|| new.counterparty.clone()),
        amount_msat: new.amount_msat.or(old.amount_msat),
        fee_msat: new.fee_msat.or(old.fee_msat),
        status: new.status,
        failure: new.failure.clone().or_else(|| old.failure.clone()),
        updated_at: new.updated_at.max(old.updated_at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, status: Status) -> PaymentRecord {
        PaymentRecord {
            id: id.into(),
            direction: Direction::Outbound,
            method: Method::Bolt11,
            contract: None,
            counterparty: Some("02aa".into()),
            amount_msat: Some(1000),
            fee_msat: None,
            status,
            failure: None,
            updated_at: 1,
        }
    }

    const C: ContractId = ContractId([7; 32]);

    #[test]
    fn a_resolved_payment_never_goes_back_to_pending() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut done = rec("p1", Status::Succeeded);
        done.fee_msat = Some(3);
        store.apply(&done).unwrap();
        // The "pending" write of the sender can land after the event.
        let merged = store.apply(&rec("p1", Status::Pending)).unwrap();
        assert_eq!(merged.status, Status::Succeeded);
        assert_eq!(merged.fee_msat, Some(3));
        assert_eq!(store.get("p1").unwrap().unwrap(), merged);
        let failed_later = store.apply(&rec("p1", Status::Failed)).unwrap();
        assert_eq!(failed_later.status, Status::Succeeded);
    }

    #[test]
    fn owed_amounts_add_up_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            assert_eq!(store.owe(C, "02bb", 700).unwrap(), 700);
            assert_eq!(store.owe(C, "02bb", 301).unwrap(), 1001);
        }
        let store = Store::open(dir.path()).unwrap();
        let owed = store.owed().unwrap();
        assert_eq!(
            owed,
            vec![Owed {
                contract: C,
                payee: "02bb".into(),
                owed_msat: 1001,
                in_flight_msat: 0
            }]
        );
    }

    #[test]
    fn bad_amounts_and_a_second_payee_are_refused_and_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.owe(C, "02bb", 5).unwrap();
        assert!(matches!(store.owe(C, "02bb", 0), Err(OweError::Zero { .. })));
        assert!(matches!(store.owe(C, "02bb", MAX_MSAT), Err(OweError::TooLarge { .. })));
        assert!(matches!(store.owe(C, "02bb", u64::MAX), Err(OweError::TooLarge { .. })));
        let err = store.owe(C, "02cc", 5).unwrap_err();
        assert!(
            err.to_string().contains("02bb") && err.to_string().contains("02cc"),
            "{err}"
        );
        assert_eq!(store.owed().unwrap()[0].owed_msat, 5);
    }

    #[test]
    fn settlement_takes_exactly_what_is_owed_and_a_failure_gives_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.owe(C, "02bb", 400).unwrap();
        assert!(
            store.begin_settlement(C, 500, u64::MAX, "s1").unwrap().is_none(),
            "below threshold"
        );
        store.owe(C, "02bb", 150).unwrap();
        let (s, pending) = store.begin_settlement(C, 500, u64::MAX, "s1").unwrap().unwrap();
        assert_eq!(s.amount_msat, 550);
        assert_eq!(pending.status, Status::Pending);
        assert_eq!(store.owed().unwrap()[0].owed_msat, 0);
        assert_eq!(store.owed().unwrap()[0].in_flight_msat, 550);
        // Accrues meanwhile.
        store.owe(C, "02bb", 10).unwrap();
        let mut failed = pending.clone();
        failed.status = Status::Failed;
        store.apply(&failed).unwrap();
        assert_eq!(store.owed().unwrap()[0].owed_msat, 560);
        assert_eq!(store.owed().unwrap()[0].in_flight_msat, 0);
        // Applying the failure twice (redelivered event) gives nothing twice.
        store.apply(&failed).unwrap();
        assert_eq!(store.owed().unwrap()[0].owed_msat, 560);
        // Second attempt succeeds: nothing owed any more.
        let (s2, p2) = store.begin_settlement(C, 500, u64::MAX, "s2").unwrap().unwrap();
        assert_eq!(s2.amount_msat, 560);
        let mut ok = p2;
        ok.status = Status::Succeeded;
        ok.fee_msat = Some(0);
        store.apply(&ok).unwrap();
        assert!(store.owed().unwrap().is_empty());
        assert!(store.unresolved_settlements().unwrap().is_empty());
    }

    #[test]
    fn a_settlement_larger_than_one_payment_can_carry_is_split_across_rounds() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.owe(C, "02bb", 2_500).unwrap();
        let (s1, _) = store.begin_settlement(C, 500, 1_000, "r1").unwrap().unwrap();
        assert_eq!(s1.amount_msat, 1_000);
        assert_eq!(
            (
                store.owed().unwrap()[0].owed_msat,
                store.owed().unwrap()[0].in_flight_msat
            ),
            (1_500, 1_000)
        );
        let (s2, _) = store.begin_settlement(C, 500, 1_000, "r2").unwrap().unwrap();
        let (s3, _) = store.begin_settlement(C, 500, 1_000, "r3").unwrap().unwrap();
        assert_eq!((s2.amount_msat, s3.amount_msat), (1_000, 500));
        assert!(
            store.begin_settlement(C, 500, 1_000, "r4").unwrap().is_none(),
            "nothing left"
        );
        assert!(store.begin_settlement(C, 500, 0, "r5").unwrap().is_none());
        let total: u64 = store
            .owed()
            .unwrap()
            .iter()
            .map(|o| o.owed_msat + o.in_flight_msat)
            .sum();
        assert_eq!(total, 2_500, "every msat is owed or in flight");
    }
}
