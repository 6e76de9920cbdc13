//! `drip keys reseal`: after a key rotation, seal every stored reply (text and raw message)
//! and every author's answer again under the current data key, so that the previous keys can be dropped from the
//! configuration.
//!
//! Rows are read in batches by id and each batch is written in one short transaction. A row
//! is written only if it still holds the bytes that were read (a retention sweep or an
//! erasure running at the same time wins), and a row that no key opens is left exactly as it
//! is and reported: nothing is lost by resealing.

use crate::crypto::Vault;
use crate::db::{self, Db};

/// Rows read and written per batch.
const BATCH: i64 = 500;

/// What a reseal did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ResealReport {
    /// Replies looked at.
    pub checked: u64,
    /// Replies sealed again under the current key.
    pub resealed: u64,
    /// Replies no configured key opens (ids), left untouched.
    pub unreadable: Vec<i64>,
    /// Authors' answers looked at, and sealed again.
    pub answers_checked: u64,
    pub answers_resealed: u64,
    /// Answers no configured key opens (ids), left untouched.
    pub unreadable_answers: Vec<i64>,
}

/// Reseals every reply and answer `vault` can open under its current key, in batches.
pub async fn reseal_all(db: &Db, vault: &Vault) -> anyhow::Result<ResealReport> {
    let mut report = ResealReport::default();
    reseal_replies(db, vault, &mut report).await?;
    reseal_answers(db, vault, &mut report).await?;
    Ok(report)
}

async fn reseal_answers(db: &Db, vault: &Vault, report: &mut ResealReport) -> anyhow::Result<()> {
    let mut after = 0;
    loop {
        let rows = db::answers::sealed_after(db, after, BATCH).await?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        after = last.id;
        let mut updates = Vec::new();
        for row in &rows {
            report.answers_checked += 1;
            match vault.open_with_key(&row.text) {
                Ok((_, true)) => {}
                Ok((plain, false)) => updates.push((row, vault.seal(&plain))),
                Err(_) => report.unreadable_answers.push(row.id),
            }
        }
        if updates.is_empty() {
            continue;
        }
        let mut tx = db.begin_write().await?;
        for (row, text) in &updates {
            let done =
                db::replace_sealed(&mut tx, ("answers", "text"), row.id, &row.text, text).await?;
            report.answers_resealed += u64::from(done);
        }
        tx.commit().await?;
    }
}

async fn reseal_replies(db: &Db, vault: &Vault, report: &mut ResealReport) -> anyhow::Result<()> {
    let mut after = 0;
    loop {
        let rows = db::replies::sealed_after(db, after, BATCH).await?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        after = last.id;
        let mut updates = Vec::new();
        for row in &rows {
            report.checked += 1;
            let text = vault.open_with_key(&row.text);
            let raw = row
                .raw
                .as_deref()
                .map(|r| vault.open_with_key(r))
                .transpose();
            let (Ok((text, text_current)), Ok(raw)) = (text, raw) else {
                report.unreadable.push(row.id);
                continue;
            };
            let raw_current = raw.as_ref().is_none_or(|(_, current)| *current);
            if text_current && raw_current {
                continue;
            }
            let new_text = (!text_current).then(|| vault.seal(&text));
            let new_raw = raw
                .filter(|(_, current)| !current)
                .map(|(plain, _)| vault.seal(&plain));
            updates.push((row, new_text, new_raw));
        }
        if updates.is_empty() {
            continue;
        }
        let mut tx = db.begin_write().await?;
        for (row, text, raw) in &updates {
            let mut done = false;
            if let Some(text) = text {
                done |= db::replace_sealed(&mut tx, ("replies", "text"), row.id, &row.text, text)
                    .await?;
            }
            if let (Some(raw), Some(old)) = (raw, &row.raw) {
                done |= db::replace_sealed(&mut tx, ("replies", "raw"), row.id, old, raw).await?;
            }
            report.resealed += u64::from(done);
        }
        tx.commit().await?;
    }
}
