//! Crash safety: a child process commits a numbered burst from several glommio tasks and prints
//! each number once its commit is acknowledged; the parent kills it with SIGKILL in the middle,
//! opens the store again, and checks that every acknowledged number is there, whole (both
//! entries of its batch), and that no batch was half applied.

use super::support::{child, on_executor, TempDir};
use pushgate::store::{self, Batch, KeyRange, StoreConfig};
use std::{
    cell::Cell,
    collections::BTreeSet,
    io::{BufRead, BufReader, Write},
    rc::Rc,
    time::{Duration, Instant},
};

const DIR_VAR: &str = "PUSHGATE_STORE_CRASH_DIR";
const RECORDS: &str = "records";
const INDEX: &str = "index";
const WRITERS: u64 = 8;
/// The child stops by itself after this many, should the parent fail to kill it.
const MOST: u64 = 50_000;
const ROUNDS: usize = 4;
/// Longest wait for the acknowledgements a round needs before it gives up.
const ROUND_LIMIT: Duration = Duration::from_secs(90);

fn value(n: u64) -> Vec<u8> {
    let mut value = format!("record {n:020} ").into_bytes();
    value.resize(1024, (n % 251) as u8);
    value
}

/// The child's part; does nothing unless started by the parent below.
#[test]
fn child_commits_a_numbered_burst() {
    let Ok(dir) = std::env::var(DIR_VAR) else { return };
    let config = StoreConfig { path: dir.into(), ..StoreConfig::default() };
    let store = store::start(&config).expect("child: start the store");
    let handle = store.handle();
    on_executor("burst", Duration::from_secs(3600), move || async move {
        let next = Rc::new(Cell::new(0u64));
        let writers: Vec<_> = (0..WRITERS)
            .map(|_| {
                let (handle, next) = (handle.clone(), next.clone());
                glommio::spawn_local(async move {
                    loop {
                        let n = next.get();
                        if n >= MOST {
                            return;
                        }
                        next.set(n + 1);
                        let mut batch = Batch::new();
                        let key = n.to_be_bytes().to_vec();
                        batch.put(RECORDS, key.clone(), value(n)).put(INDEX, key, "x");
                        handle.commit(batch).await.expect("child: commit");
                        let mut out = std::io::stdout().lock();
                        writeln!(out, "ack {n}").and_then(|()| out.flush()).expect("child: stdout");
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.await;
        }
    });
}

#[test]
fn every_acknowledged_write_survives_kill_9() {
    for round in 0..ROUNDS {
        let dir = TempDir::new("crash");
        let kill_after = 40 + 130 * round;
        let acknowledged = run_and_kill(&dir, kill_after);
        assert!(acknowledged.len() >= kill_after, "round {round}: {} acks", acknowledged.len());
        assert!(
            acknowledged.len() < MOST as usize,
            "round {round}: the burst ended before the kill"
        );
        check(&dir, &acknowledged, round);
    }
}

/// Starts the child, kills it after `kill_after` acknowledgements, and returns every number it
/// acknowledged (including lines still in the pipe when it died).
fn run_and_kill(dir: &TempDir, kill_after: usize) -> BTreeSet<u64> {
    let path = dir.0.to_str().expect("utf-8 temp path");
    let mut process = child("crash::child_commits_a_numbered_burst", &[(DIR_VAR, path)])
        .spawn()
        .expect("start the child");
    let stdout = process.stdout.take().expect("child stdout");
    let (lines, acks) = crossbeam_channel::unbounded();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(n) = line.strip_prefix("ack ").and_then(|n| n.parse::<u64>().ok()) {
                let _ = lines.send(n);
            }
        }
    });
    let mut acknowledged = BTreeSet::new();
    let deadline = Instant::now() + ROUND_LIMIT;
    while acknowledged.len() < kill_after {
        let left = deadline.saturating_duration_since(Instant::now());
        match acks.recv_timeout(left) {
            Ok(n) => {
                acknowledged.insert(n);
            }
            Err(_) => break,
        }
    }
    process.kill().expect("SIGKILL the child");
    process.wait().expect("reap the child");
    reader.join().expect("stdout reader");
    acknowledged.extend(acks.try_iter());
    acknowledged
}

fn check(dir: &TempDir, acknowledged: &BTreeSet<u64>, round: usize) {
    let store = store::start(&dir.config()).expect("the store opens after SIGKILL");
    let handle = store.handle();
    let (records, index) = on_executor("check", ROUND_LIMIT, move || async move {
        (all_keys(&handle, RECORDS).await, all_keys(&handle, INDEX).await)
    });
    for n in acknowledged {
        assert!(records.contains(n), "round {round}: acknowledged {n} is missing");
    }
    assert_eq!(records, index, "round {round}: a batch was applied in part");
    let handle = store.handle();
    let sample: Vec<u64> = acknowledged.iter().copied().step_by(17).collect();
    let values = on_executor("values", ROUND_LIMIT, move || async move {
        let mut values = Vec::new();
        for n in sample {
            let got = handle.get(RECORDS, n.to_be_bytes().to_vec()).await.expect("get");
            values.push((n, got));
        }
        values
    });
    for (n, got) in values {
        assert_eq!(got.as_deref(), Some(&value(n)[..]), "round {round}: value of {n}");
    }
}

async fn all_keys(handle: &store::StoreHandle, table: &'static str) -> BTreeSet<u64> {
    let mut keys = BTreeSet::new();
    let mut range = KeyRange::all();
    loop {
        let page = handle.scan(table, range.clone(), 1000).await.expect("scan");
        let Some((last, _)) = page.last() else { return keys };
        range = range.after(last.clone());
        for (k, _) in &page {
            keys.insert(u64::from_be_bytes(k[..].try_into().expect("8-byte key")));
        }
    }
}
