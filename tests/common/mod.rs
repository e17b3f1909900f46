//! Shared test support: every executor the crate promises to work on (E4), a hang guard, a
//! deterministic pattern source and a checker of what a stream yields.
#![allow(dead_code, unused_imports)]

pub mod http;
pub mod script_server;
pub mod source;
pub mod track;
pub mod waker;
pub mod wav;

use std::future::Future;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use futures::FutureExt;
use futures::future::RemoteHandle;

pub use source::{Config, OPEN_CONTROL, SEEK_CONTROL_BASE, Stats, TestError, TestSource, pattern};
pub use track::{Tracker, drain};

/// A tokio runtime with one worker thread and its I/O and time drivers: where the tests run
/// servers, HTTP clients and engines.
pub fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Reads to the end or the first error, 50 000 bytes at a time: the bytes read, and the
/// error.
pub fn read_all(reader: &mut impl std::io::Read) -> (Vec<u8>, Option<std::io::Error>) {
    let mut all = Vec::new();
    let mut buf = vec![0; 50_000];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return (all, None),
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(error) => return (all, Some(error)),
        }
    }
}

/// Asserts that `got` is `want`, naming the first byte that differs.
pub fn assert_same(got: &[u8], want: &[u8]) {
    if let Some(at) = got.iter().zip(want).position(|(a, b)| a != b) {
        panic!("bytes differ at {at}");
    }
    assert_eq!(got.len(), want.len(), "lengths differ");
}

/// A file written for one test, removed at the end.
pub struct TempFile(pub std::path::PathBuf);

impl TempFile {
    pub fn new(name: &str, contents: &[u8]) -> Self {
        let path = std::env::temp_dir().join(format!("kithara-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).unwrap();
        Self(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The executors of rule E4.
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone, Copy)]
pub enum Executor {
    TokioCurrentThread,
    TokioMultiThread,
    Smol,
    AsyncStd,
    /// `futures::executor::block_on`; spawned futures get a thread each, also on `block_on`.
    FuturesBlockOn,
    /// `async_executor::Executor` driven by one thread: tasks interleave on it.
    AsyncExecutor,
}

/// Spawns futures on the executor a test runs on.
#[derive(Clone)]
pub struct Spawner(SpawnerKind);

#[derive(Clone)]
enum SpawnerKind {
    Tokio(tokio::runtime::Handle),
    Smol,
    AsyncStd,
    Thread,
    AsyncExecutor(Arc<async_executor::Executor<'static>>),
}

impl Spawner {
    /// Spawns on the tokio runtime behind `handle`.
    pub fn tokio(handle: tokio::runtime::Handle) -> Self {
        Self(SpawnerKind::Tokio(handle))
    }

    /// Runs `future` as its own task. Awaiting the handle gives its output (or resumes its
    /// panic); dropping the handle cancels the task.
    pub fn spawn<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> RemoteHandle<T> {
        let (remote, handle) = future.remote_handle();
        match &self.0 {
            SpawnerKind::Tokio(rt) => drop(rt.spawn(remote)),
            SpawnerKind::Smol => smol::spawn(remote).detach(),
            SpawnerKind::AsyncStd => drop(async_std::task::spawn(remote)),
            SpawnerKind::Thread => drop(thread::spawn(move || futures::executor::block_on(remote))),
            SpawnerKind::AsyncExecutor(ex) => ex.spawn(remote).detach(),
        }
        handle
    }
}

/// How long a test may take before it counts as hung. Generous: it only fails hung tests.
fn hang_timeout() -> Duration {
    let secs = std::env::var("KITHARA_TEST_TIMEOUT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    Duration::from_secs(secs)
}

/// Runs `f` on a thread of its own and fails if it does not finish within the hang timeout;
/// a panic in `f` is resumed here.
pub fn hang_guard<T: Send + 'static>(name: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (done_tx, done_rx) = mpsc::channel();
    let thread = thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let out = f();
            let _ = done_tx.send(());
            out
        })
        .expect("spawn test thread");
    match done_rx.recv_timeout(hang_timeout()) {
        Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => match thread.join() {
            Ok(out) => out,
            Err(panic) => std::panic::resume_unwind(panic),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{name}: hung (no result within {:?})", hang_timeout())
        }
    }
}

impl Executor {
    /// Runs `test` to completion on this executor, under the hang guard.
    pub fn run<F, Fut>(self, name: &str, test: F)
    where
        F: FnOnce(Spawner) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let name = format!("{name} on {self:?}");
        hang_guard(&name, move || match self {
            Executor::TokioCurrentThread => {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .expect("tokio runtime");
                let spawner = Spawner(SpawnerKind::Tokio(rt.handle().clone()));
                rt.block_on(test(spawner));
            }
            Executor::TokioMultiThread => {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .build()
                    .expect("tokio runtime");
                let spawner = Spawner(SpawnerKind::Tokio(rt.handle().clone()));
                rt.block_on(test(spawner));
            }
            Executor::Smol => smol::block_on(test(Spawner(SpawnerKind::Smol))),
            Executor::AsyncStd => async_std::task::block_on(test(Spawner(SpawnerKind::AsyncStd))),
            Executor::FuturesBlockOn => {
                futures::executor::block_on(test(Spawner(SpawnerKind::Thread)));
            }
            Executor::AsyncExecutor => {
                let ex = Arc::new(async_executor::Executor::new());
                let spawner = Spawner(SpawnerKind::AsyncExecutor(ex.clone()));
                futures::executor::block_on(ex.run(test(spawner)));
            }
        });
    }
}

/// Defines a module of tests named after a contract rule, with one test per executor:
///
/// ```ignore
/// on_every_executor! {
///     /// D3: ...
///     fn d3_end(spawner) { /* async body */ }
/// }
/// ```
#[macro_export]
macro_rules! on_every_executor {
    ($(#[$meta:meta])* fn $name:ident($spawner:ident) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[allow(unused_variables)]
            async fn body($spawner: $crate::common::Spawner) $body

            fn run(executor: $crate::common::Executor) {
                executor.run(stringify!($name), body);
            }

            #[test]
            fn tokio_current_thread() {
                run($crate::common::Executor::TokioCurrentThread);
            }

            #[test]
            fn tokio_multi_thread() {
                run($crate::common::Executor::TokioMultiThread);
            }

            #[test]
            fn smol() {
                run($crate::common::Executor::Smol);
            }

            #[test]
            fn async_std() {
                run($crate::common::Executor::AsyncStd);
            }

            #[test]
            fn futures_block_on() {
                run($crate::common::Executor::FuturesBlockOn);
            }

            #[test]
            fn async_executor() {
                run($crate::common::Executor::AsyncExecutor);
            }
        }
    };
}
