//! Failures with clear errors: a directory that cannot be written, a file that is not a store
//! or is damaged, a file in use, and a disk that fills up under commits (the commit future
//! returns the error, nothing acknowledged is lost, and writes resume once there is room).

use super::support::{child, on_executor, TempDir};
use pushgate::store::{self, Batch, StoreConfig, StoreError, FILE_NAME};
use std::{
    io::{BufRead, BufReader, Write},
    time::Duration,
};

const TABLE: &str = "t";
const LIMIT: Duration = Duration::from_secs(120);

fn start_error(config: &StoreConfig) -> StoreError {
    match store::start(config) {
        Ok(_) => panic!("{} opened", config.path.display()),
        Err(e) => e,
    }
}

#[test]
fn nothing_is_created_before_start() {
    let dir = TempDir::new("lazy");
    let config = dir.config();
    config.check("store").expect("valid");
    assert!(!dir.0.exists());
    let store = store::start(&config).expect("start");
    assert_eq!(store.file(), dir.0.join(FILE_NAME));
    assert!(store.file().is_file());
}

#[test]
fn a_directory_that_cannot_be_made_is_named_in_the_error() {
    let dir = TempDir::new("notdir");
    std::fs::create_dir_all(&dir.0).expect("mkdir");
    let file = dir.0.join("plain-file");
    std::fs::write(&file, b"not a directory").expect("write");
    let config = StoreConfig { path: file.join("data"), ..StoreConfig::default() };
    let error = start_error(&config);
    assert!(matches!(error, StoreError::Dir { .. }), "{error:?}");
    assert!(error.to_string().contains(&*config.path.to_string_lossy()), "{error}");

    // procfs refuses new directories even to root.
    let config = StoreConfig { path: "/proc/pushgate-store-test".into(), ..StoreConfig::default() };
    let error = start_error(&config);
    assert!(matches!(error, StoreError::Dir { .. }), "{error:?}");
    assert!(error.to_string().contains("/proc/pushgate-store-test"), "{error}");
}

#[test]
fn a_read_only_directory_is_named_in_the_error() {
    use std::os::unix::fs::PermissionsExt;
    // Root writes through permission bits; the procfs case above covers root.
    if unsafe { libc::geteuid() } == 0 {
        return;
    }
    let dir = TempDir::new("readonly");
    std::fs::create_dir_all(&dir.0).expect("mkdir");
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o555)).expect("chmod");
    let error = start_error(&dir.config());
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    assert!(matches!(error, StoreError::Dir { .. }), "{error:?}");
    assert!(error.to_string().contains(&*dir.0.to_string_lossy()), "{error}");
}

#[test]
fn a_file_of_garbage_is_refused_with_its_name() {
    let dir = TempDir::new("garbage");
    std::fs::create_dir_all(&dir.0).expect("mkdir");
    let file = dir.0.join(FILE_NAME);
    let garbage: Vec<u8> =
        (0..64 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(&file, &garbage).expect("write garbage");
    let error = start_error(&dir.config());
    assert!(matches!(error, StoreError::Corrupted { .. }), "{error:?}");
    assert!(error.to_string().contains(&*file.to_string_lossy()), "{error}");
    assert_eq!(std::fs::read(&file).expect("read"), garbage, "a refused file is left as it was");
}

/// Fills a store with recognisable values and closes it; returns the file's bytes.
fn written_store(dir: &TempDir) -> Vec<u8> {
    let store = store::start(&dir.config()).expect("start");
    let handle = store.handle();
    on_executor("fill", LIMIT, move || async move {
        let mut batch = Batch::new();
        for n in 0..200u32 {
            batch.put(
                TABLE,
                n.to_be_bytes().to_vec(),
                format!("{:-<1000}", format!("VALUE{n:05}")),
            );
        }
        handle.commit(batch).await.expect("commit");
    });
    store.shutdown();
    std::fs::read(dir.0.join(FILE_NAME)).expect("read the file")
}

#[test]
fn a_damaged_page_is_found_at_start() {
    let dir = TempDir::new("damaged");
    let mut bytes = written_store(&dir);
    // Change one byte in every copy of one value: the page that holds it no longer matches the
    // checksum its parent keeps.
    let needle = b"VALUE00100";
    let at: Vec<usize> = bytes
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| w == needle)
        .map(|(i, _)| i)
        .collect();
    assert!(!at.is_empty(), "the value is in the file");
    for i in at {
        bytes[i + 5] ^= 0x01;
    }
    std::fs::write(dir.0.join(FILE_NAME), &bytes).expect("write");
    let error = start_error(&dir.config());
    assert!(matches!(error, StoreError::Corrupted { .. }), "{error:?}");
    assert!(error.to_string().contains(FILE_NAME), "{error}");
}

#[test]
fn a_truncated_file_is_refused_with_its_name() {
    let dir = TempDir::new("truncated");
    let bytes = written_store(&dir);
    std::fs::write(dir.0.join(FILE_NAME), &bytes[..bytes.len() / 3]).expect("truncate");
    let error = start_error(&dir.config());
    assert!(matches!(error, StoreError::Corrupted { .. }), "{error:?}");
    assert!(error.to_string().contains(FILE_NAME), "{error}");
}

#[test]
fn a_file_in_use_is_refused() {
    let dir = TempDir::new("inuse");
    let _first = store::start(&dir.config()).expect("start");
    let error = start_error(&dir.config());
    assert!(matches!(error, StoreError::InUse { .. }), "{error:?}");
    assert!(error.to_string().contains(FILE_NAME), "{error}");
}

const FULL_VAR: &str = "PUSHGATE_STORE_FULL_DIR";

/// The child's part of the disk-full test: the file may grow by little more than a few hundred
/// KiB (RLIMIT_FSIZE, so writes past it fail with EFBIG as on a full disk); it commits 1 KiB
/// values one by one until a commit fails, then lifts the limit and commits again.
#[test]
fn child_fills_its_disk() {
    let Ok(dir) = std::env::var(FULL_VAR) else { return };
    let config = StoreConfig { path: dir.into(), ..StoreConfig::default() };
    let store = store::start(&config).expect("child: start");
    let size = std::fs::metadata(store.file()).expect("child: stat").len();
    set_file_size_limit(size + 512 * 1024);
    let handle = store.handle();
    let (failed, recovered) = on_executor("fill", LIMIT, move || async move {
        let mut out = std::io::stdout().lock();
        let mut failure = None;
        for n in 0..100_000u32 {
            let mut batch = Batch::new();
            batch.put(TABLE, n.to_be_bytes().to_vec(), vec![n as u8; 1024]);
            match handle.commit(batch).await {
                Ok(()) => writeln!(out, "ack {n}").expect("stdout"),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        set_file_size_limit(libc::RLIM_INFINITY);
        let mut batch = Batch::new();
        batch.put(TABLE, "after", "room again");
        (failure, handle.commit(batch).await)
    });
    let failed = failed.expect("child: the disk never filled");
    assert!(failed.is_disk_full(), "child: {failed:?}");
    recovered.expect("child: a commit after the disk has room again");
    assert!(store.stats().failed_commits >= 1 && store.stats().reopens >= 1);
    println!("recovered");
}

fn set_file_size_limit(bytes: u64) {
    // Without this the kernel kills the process (SIGXFSZ) instead of failing the write.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_FSIZE, &mut limit) }, 0);
    limit.rlim_cur = bytes.min(limit.rlim_max);
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, &limit) }, 0);
}

#[test]
fn a_full_disk_fails_the_commit_and_loses_nothing_acknowledged() {
    let dir = TempDir::new("full");
    let path = dir.0.to_str().expect("utf-8 temp path");
    let output = child("failures::child_fills_its_disk", &[(FULL_VAR, path)])
        .output()
        .expect("run the child");
    assert!(output.status.success(), "the child failed: {:?}", output.status);
    let mut acknowledged = Vec::new();
    let mut recovered = false;
    for line in BufReader::new(&output.stdout[..]).lines() {
        let line = line.expect("line");
        recovered |= line == "recovered";
        if let Some(n) = line.strip_prefix("ack ").and_then(|n| n.parse::<u32>().ok()) {
            acknowledged.push(n);
        }
    }
    assert!(recovered, "the child did not write again after the disk had room");
    assert!(acknowledged.len() > 10, "{} acks", acknowledged.len());

    let store = store::start(&dir.config()).expect("reopen");
    let handle = store.handle();
    let missing = on_executor("check", LIMIT, move || async move {
        let mut missing = Vec::new();
        for n in acknowledged {
            if handle.get(TABLE, n.to_be_bytes().to_vec()).await.expect("get").as_deref()
                != Some(&vec![n as u8; 1024][..])
            {
                missing.push(n);
            }
        }
        let after = handle.get(TABLE, "after").await.expect("get");
        assert_eq!(after.as_deref(), Some(&b"room again"[..]));
        missing
    });
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
}
