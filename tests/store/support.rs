//! What the store tests share: temporary directories, glommio executors sized for a small
//! machine, and re-running this test binary as a child process.

use pushgate::store::StoreConfig;
use std::{
    future::Future,
    path::PathBuf,
    process::{Command, Stdio},
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

/// Per executor: this machine allows 8 MiB of locked memory in total.
const IO_MEMORY: usize = 256 * 1024;

/// A directory under the system's temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("pushgate-store-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }

    pub fn config(&self) -> StoreConfig {
        StoreConfig { path: self.0.clone(), ..StoreConfig::default() }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `make()`'s future on a fresh glommio executor (its own thread) and returns its output,
/// or panics after `limit` so that a lost wake fails the test instead of hanging it.
pub fn on_executor<T, F, Fut>(name: &str, limit: Duration, make: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
{
    let (done, result) = crossbeam_channel::bounded(1);
    let executor = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .name(name)
        .io_memory(IO_MEMORY)
        .spawn(move || async move {
            let _ = done.send(make().await);
        })
        .expect("start a glommio executor");
    let output =
        result.recv_timeout(limit).unwrap_or_else(|_| panic!("{name} did not finish in {limit:?}"));
    executor.join().expect("executor thread");
    output
}

/// Re-runs this test binary for the single test `test`, with `env` set; the child test does
/// its part when it sees the variable. Standard output is piped to the caller.
pub fn child(test: &str, env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("test binary"));
    command.args([test, "--exact", "--nocapture", "--test-threads=1"]);
    command.envs(env.iter().copied()).stdout(Stdio::piped()).stderr(Stdio::inherit());
    command
}
