//! The next notice of one device: over the conversations the user has notices in or is a
//! member of, the oldest notice after that device's cursor in each (a missing cursor starts at
//! the device's first connect), skipping `onlinePushOnce` notices already pushed. The scans are
//! all queued before the first is awaited, so the storage thread answers them together.

use super::keys::{self, Stored};
use crate::store::{KeyRange, Reply, StoreError, StoreHandle};
use ahash::AHashMap;
use bytes::Bytes;
use futures_lite::future::zip;
use prost::Message;

/// Entries read per scan page.
const PAGE: usize = 1000;
/// Notices read per conversation at a time (more only when those were all spent).
const FEW: usize = 8;

/// The next notice for a device: its table, key, order and content.
#[derive(Debug, Clone)]
pub struct Next {
    pub table: &'static str,
    pub key: Bytes,
    pub order: Vec<u8>,
    pub stored: Stored,
}

/// Every entry of `range`, page by page.
pub async fn scan_all(
    store: &StoreHandle,
    table: &'static str,
    range: KeyRange,
) -> Result<Vec<(Bytes, Bytes)>, StoreError> {
    let mut all = Vec::new();
    let mut page = range.clone();
    loop {
        let got = store.scan(table, page.clone(), PAGE).await?;
        let full = got.len() == PAGE;
        let last = got.last().map(|(k, _)| k.clone());
        all.extend(got);
        match last {
            Some(last) if full => page = range.after(last),
            _ => return Ok(all),
        }
    }
}

/// The device's first connect (`now` recorded if it has none).
pub async fn device_start(
    store: &StoreHandle,
    user: &str,
    device: &str,
    now: u64,
) -> Result<u64, StoreError> {
    let key = keys::key(&[user, device]);
    if let Some(value) = store.get(keys::DEVICES, key.clone()).await? {
        return Ok(keys::ms(&value).unwrap_or(0));
    }
    let mut batch = crate::store::Batch::new();
    batch.put(keys::DEVICES, key, now.to_be_bytes().to_vec());
    store.commit(batch).await?;
    Ok(now)
}

/// The oldest notice the device has not acknowledged, if any.
pub async fn next(
    store: &StoreHandle,
    user: &str,
    device: &str,
    start: u64,
) -> Result<Option<Next>, StoreError> {
    let direct = scan_all(store, keys::USER_CONVS, KeyRange::prefix(keys::prefix(&[user])));
    let member = scan_all(store, keys::MEMBER_CONVS, KeyRange::prefix(keys::prefix(&[user])));
    let cursors = scan_all(store, keys::CURSORS, KeyRange::prefix(keys::prefix(&[user, device])));
    let ((direct, member), cursors) = zip(zip(direct, member), cursors).await;
    let (direct, member, cursors) = (direct?, member?, cursors?);
    let cursors: AHashMap<Vec<u8>, Bytes> =
        cursors.into_iter().map(|(k, v)| (keys::last(&k).to_vec(), v)).collect();
    let floor =
        |conv: &[u8]| cursors.get(conv).map_or_else(|| keys::before_ms(start), |c| c.to_vec());
    let mut firsts = Vec::new();
    for (table, convs) in [(keys::USER_NOTICES, &direct), (keys::CONV_NOTICES, &member)] {
        for (key, _) in convs.iter() {
            let conv = keys::last(key);
            let Ok(conv) = std::str::from_utf8(conv) else { continue };
            let prefix = match table {
                keys::USER_NOTICES => keys::prefix(&[user, conv]),
                _ => keys::prefix(&[conv]),
            };
            let range = KeyRange::prefix(prefix.clone())
                .after(keys::under(&prefix, &floor(conv.as_bytes())));
            firsts.push((table, prefix.len(), range.clone(), store.scan(table, range, FEW)));
        }
    }
    let mut best: Option<Next> = None;
    for (table, cut, range, first) in firsts {
        if let Some(next) = first_valid(store, table, cut, range, first).await? {
            if best.as_ref().is_none_or(|b| next.order < b.order) {
                best = Some(next);
            }
        }
    }
    Ok(best)
}

/// The first notice in `range` that may be pushed.
async fn first_valid(
    store: &StoreHandle,
    table: &'static str,
    cut: usize,
    range: KeyRange,
    first: Reply<crate::store::Entries>,
) -> Result<Option<Next>, StoreError> {
    let mut page = first.await?;
    loop {
        let full = page.len() == FEW;
        let mut last = None;
        for (key, value) in page {
            let Ok(stored) = Stored::decode(value) else { continue };
            if !stored.push_invalid {
                let order = key[cut..].to_vec();
                return Ok(Some(Next { table, key, order, stored }));
            }
            last = Some(key);
        }
        match last {
            Some(last) if full => page = store.scan(table, range.after(last), FEW).await?,
            _ => return Ok(None),
        }
    }
}
