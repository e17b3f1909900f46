//! [`DiskStore`]: the byte ranges of one resource in a file of a [`DiskCache`].

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::ops::Range;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::Mutex;

use bytes::Bytes;

use super::Store;
use super::Validator;
use super::disk_cache::{CacheState, lock};
use super::index_file::Index;

/// The most bytes one [`get`](Store::get) reads from the file: one read, of at most this
/// much, per chunk served.
pub const DISK_CHUNK: usize = 64 * 1024;

/// How many bytes a store writes between two publishes of its index, by default.
const SYNC_EVERY: u64 = 1 << 20;

#[cfg(test)]
std::thread_local! {
    /// What runs at each crash point, in the unit tests.
    static CRASH_POINT: core::cell::RefCell<Option<alloc::boxed::Box<dyn FnMut()>>> =
        const { core::cell::RefCell::new(None) };
}

/// A moment between two file operations, where a kill could land. The unit tests check
/// here that the files, as a kill would leave them, claim only the right bytes.
pub(super) fn crash_point() {
    #[cfg(test)]
    CRASH_POINT.with(|hook| {
        // Taken out while it runs: the check opens stores of its own.
        let taken = hook.borrow_mut().take();
        if let Some(mut check) = taken {
            check();
            *hook.borrow_mut() = Some(check);
        }
    });
}

/// The byte ranges of one resource kept in a file of a [`DiskCache`], under the cache's
/// budget: a [`Store`] for `CachedSource`.
///
/// Get one with [`DiskCache::store`]. While it is alive the resource is open: the cache
/// never evicts it. Dropping it publishes what it holds.
///
/// - **Reads** are of at most [`DISK_CHUNK`] bytes at a time; **writes** are of what one
///   insert brings (one chunk of a fetch's body). Both run on the caller's thread: on an
///   async executor, a poll does at most one chunk of file I/O.
/// - **Publishing.** Every [`sync_every`](Self::with_sync_every) bytes written (1 MiB by
///   default), and when dropped, the store syncs the data file, then replaces its index
///   (see [`DiskCache`] for why this order is crash-safe). A sync blocks the calling
///   thread for as long as the disk takes; [`publish`](Self::publish) lets you choose when.
/// - **I/O errors** do not fail the stream: a range that cannot be read is dropped from
///   the store (and fetched again), bytes that cannot be written are not kept.
///   [`io_errors`](Self::io_errors) counts them.
/// - **Eviction** is by whole resources, across the cache: a store that finds no room
///   (every other resource is open, or the resource alone fills the budget) keeps no more,
///   and what it is given passes through without being kept.
///
/// [`DiskCache`]: super::DiskCache
/// [`DiskCache::store`]: super::DiskCache::store
pub struct DiskStore {
    cache: Arc<Mutex<CacheState>>,
    /// The file name of the resource (the key's hash), in the cache's books.
    name: String,
    index_path: PathBuf,
    file: File,
    /// What it holds: written to the data file (maybe not synced yet).
    index: Index,
    /// Bytes written since the last publish.
    unpublished: u64,
    /// Whether the index changed since the last publish.
    dirty: bool,
    /// Whether the index on disk may claim bytes the store dropped (a clear, or bytes the
    /// data file lost): no byte is written until a publish has replaced it, since a write
    /// could put other bytes (or a hole of zeros) under those claims.
    stale_claims: bool,
    sync_every: u64,
    io_errors: u64,
}

impl core::fmt::Debug for DiskStore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DiskStore")
            .field("key", &self.index.key)
            .field("len", &self.index.len)
            .field("held", &self.index.held())
            .field("unpublished", &self.unpublished)
            .field("io_errors", &self.io_errors)
            .finish_non_exhaustive()
    }
}

impl DiskStore {
    /// The store of a resource the cache has marked open, from its index.
    pub(super) fn open(
        cache: Arc<Mutex<CacheState>>,
        mut index: Index,
        index_path: PathBuf,
        data_path: PathBuf,
    ) -> io::Result<Self> {
        let name = index_path
            .file_stem()
            .and_then(|stem| stem.to_str())
            .map(String::from)
            .unwrap_or_default();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&data_path);
        let file_len = file.and_then(|file| Ok((file.metadata()?.len(), file)));
        let (file_len, file) = match file_len {
            Ok(opened) => opened,
            Err(error) => {
                lock(&cache).closed(&name);
                return Err(error);
            }
        };
        // An index never claims bytes past the data file's end: the data was synced before
        // it was published. Should a file system have lost them anyway, drop the claim.
        let mut stale_claims = false;
        for run in index.runs.ranges() {
            if run.end > file_len {
                index.runs.remove(run.start.max(file_len), run.end);
                stale_claims = true;
            }
        }
        lock(&cache).opened(&name, index.held());
        Ok(Self {
            cache,
            name,
            index_path,
            file,
            index,
            unpublished: 0,
            dirty: stale_claims,
            stale_claims,
            sync_every: SYNC_EVERY,
            io_errors: 0,
        })
    }

    /// Publishes the index after every `bytes` written (default 1 MiB): fewer syncs, or
    /// fewer bytes to fetch again after a crash.
    #[must_use]
    pub fn with_sync_every(mut self, bytes: u64) -> Self {
        self.sync_every = bytes.max(1);
        self
    }

    /// The key of the resource.
    pub fn key(&self) -> &str {
        &self.index.key
    }

    /// The bytes held.
    pub fn held_bytes(&self) -> u64 {
        self.index.held()
    }

    /// How many reads and writes of the files failed (each one dropped or did not keep
    /// bytes; see the type's docs).
    pub fn io_errors(&self) -> u64 {
        self.io_errors
    }

    /// Syncs the data file, then replaces the index with what the store holds now.
    ///
    /// # Errors
    ///
    /// If the sync or the index write fails; the index on disk is then the previous one.
    pub fn publish(&mut self) -> io::Result<()> {
        self.file.sync_data()?;
        crash_point();
        self.index.write(&self.index_path)?;
        self.unpublished = 0;
        self.dirty = false;
        self.stale_claims = false;
        Ok(())
    }

    /// Publishes, counting a failure (the next publish tries again).
    fn publish_or_count(&mut self) {
        if self.publish().is_err() {
            self.io_errors += 1;
        }
    }

    fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<()> {
        let mut file = &self.file;
        file.seek(SeekFrom::Start(pos))?;
        file.read_exact(buf)
    }

    fn write_at(&self, pos: u64, bytes: &[u8]) -> io::Result<()> {
        let mut file = &self.file;
        file.seek(SeekFrom::Start(pos))?;
        file.write_all(bytes)
    }

    /// Drops `range` (held) from the store.
    fn drop_range(&mut self, range: Range<u64>) {
        self.index.runs.remove(range.start, range.end);
        lock(&self.cache).release(&self.name, range.end - range.start);
        self.dirty = true;
    }
}

impl Store for DiskStore {
    fn budget(&self) -> u64 {
        lock(&self.cache).budget()
    }

    fn get(&mut self, pos: u64, max: usize) -> Option<Bytes> {
        let run = self.index.runs.at(pos)?;
        let n = (run.end - pos).min(max.min(DISK_CHUNK) as u64) as usize;
        let mut buf = vec![0; n];
        match self.read_at(pos, &mut buf) {
            Ok(()) => Some(Bytes::from(buf)),
            Err(_) => {
                self.io_errors += 1;
                self.drop_range(pos..run.end);
                None
            }
        }
    }

    fn held_until(&self, pos: u64) -> u64 {
        self.index.runs.held_until(pos)
    }

    fn next_held(&self, pos: u64) -> Option<u64> {
        self.index.runs.next_held(pos)
    }

    fn ranges(&self) -> Vec<Range<u64>> {
        self.index.runs.ranges()
    }

    /// Writes what is missing of `bytes` at its offsets, as far as the cache's budget has
    /// room (evicting other resources, least recently used first). `protect` is not
    /// needed: a disk store drops nothing of its own resource to make room.
    fn insert(&mut self, pos: u64, bytes: &Bytes, _protect: Range<u64>) -> u64 {
        let end = pos + bytes.len() as u64;
        if self.stale_claims && self.index.runs.gaps(pos, end).next().is_some() {
            // The index on disk claims bytes no longer held: replaced first, or nothing
            // is written.
            self.publish_or_count();
            if self.stale_claims {
                return 0;
            }
        }
        let mut stored = 0;
        let mut at = pos;
        loop {
            let Some(gap) = self.index.runs.gaps(at, end).next() else {
                break;
            };
            at = gap.end;
            let want = gap.end - gap.start;
            let granted = lock(&self.cache).reserve(&self.name, want);
            let from = (gap.start - pos) as usize;
            let written = granted > 0
                && match self.write_at(gap.start, &bytes[from..from + granted as usize]) {
                    Ok(()) => true,
                    Err(_) => {
                        self.io_errors += 1;
                        false
                    }
                };
            crash_point();
            if !written {
                lock(&self.cache).release(&self.name, granted);
                break;
            }
            self.index.runs.add(gap.start, gap.start + granted);
            stored += granted;
            if granted < want {
                break;
            }
        }
        if stored > 0 {
            self.unpublished += stored;
            self.dirty = true;
            if self.unpublished >= self.sync_every {
                self.publish_or_count();
            }
        }
        stored
    }

    fn total_len(&self) -> Option<u64> {
        self.index.len
    }

    fn set_total_len(&mut self, len: Option<u64>) {
        if self.index.len != len && len.is_some() {
            self.index.len = len;
            self.dirty = true;
        }
    }

    fn validator(&self) -> Option<&Validator> {
        self.index.validator.as_ref()
    }

    fn set_validator(&mut self, validator: Option<Validator>) {
        if self.index.validator != validator {
            self.index.validator = validator;
            self.dirty = true;
        }
    }

    /// Drops everything held: the index says so first (published at once), then the
    /// data file is emptied. Should the publish fail, nothing is written until one
    /// succeeds.
    fn clear(&mut self) {
        let held = self.index.held();
        self.index.runs.clear();
        lock(&self.cache).release(&self.name, held);
        self.stale_claims = true;
        self.publish_or_count();
        if self.file.set_len(0).is_err() {
            self.io_errors += 1;
        }
        crash_point();
    }
}

impl Drop for DiskStore {
    fn drop(&mut self) {
        // Published even when nothing changed: the index's time orders the cache's
        // resources by use across runs.
        self.publish_or_count();
        lock(&self.cache).closed(&self.name);
    }
}

#[cfg(test)]
mod tests {
    use super::super::DiskCache;
    use super::*;
    use alloc::format;
    use alloc::rc::Rc;
    use core::cell::Cell;
    use std::path::Path;

    const LEN: u64 = 100_000;

    fn byte(key: u64, version: u64, pos: u64) -> u8 {
        (pos.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (key << 40) ^ (version << 20)).to_le_bytes()[3]
    }

    fn version_of(store: &DiskStore) -> u64 {
        match store.validator() {
            Some(Validator::ETag(tag)) => tag.parse().unwrap(),
            _ => 0,
        }
    }

    /// Opens a copy of `dir`, as a kill right now would leave it, and checks that every
    /// byte its stores claim is the right one. The bytes claimed.
    fn check_as_killed(dir: &Path, snapshot: &Path) -> u64 {
        let _ = std::fs::remove_dir_all(snapshot);
        std::fs::create_dir_all(snapshot).unwrap();
        for item in std::fs::read_dir(dir).unwrap() {
            let path = item.unwrap().path();
            std::fs::copy(&path, snapshot.join(path.file_name().unwrap())).unwrap();
        }
        let cache = DiskCache::open(snapshot, u64::MAX).unwrap();
        let mut claimed = 0;
        for key in 0..2 {
            let mut store = cache.store(&format!("{key}")).unwrap();
            let version = version_of(&store);
            for run in store.ranges() {
                let mut pos = run.start;
                while pos < run.end {
                    let got = store.get(pos, usize::MAX).unwrap();
                    for (at, &b) in (pos..).zip(got.iter()) {
                        assert_eq!(b, byte(key, version, at), "key {key} v{version} at {at}");
                    }
                    pos += got.len() as u64;
                }
                claimed += run.end - run.start;
            }
        }
        claimed
    }

    /// A writer that inserts, publishes, changes versions and closes, with the files
    /// checked at every crash point: the order of writes, syncs and publishes is what a
    /// kill at any moment relies on.
    #[test]
    #[cfg_attr(miri, ignore = "file I/O, and no unsafe code to check")]
    fn a_kill_at_any_file_operation_leaves_only_right_bytes() {
        let root =
            std::env::temp_dir().join(format!("kithara-crash-points-{}", std::process::id()));
        let (dir, snapshot) = (root.join("cache"), root.join("snapshot"));
        let _ = std::fs::remove_dir_all(&root);
        let points = Rc::new(Cell::new(0u64));
        let claimed = Rc::new(Cell::new(0u64));
        {
            let (dir, snapshot) = (dir.clone(), snapshot.clone());
            let (points, claimed) = (points.clone(), claimed.clone());
            CRASH_POINT.with(|hook| {
                *hook.borrow_mut() = Some(alloc::boxed::Box::new(move || {
                    points.set(points.get() + 1);
                    claimed.set(claimed.get() + check_as_killed(&dir, &snapshot));
                }));
            });
        }
        let cache = DiskCache::open(&dir, 150_000).unwrap();
        let mut rng = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        for round in 0..8 {
            let key = round % 2;
            let mut store = cache
                .store(&format!("{key}"))
                .unwrap()
                .with_sync_every(10_000);
            let mut version = version_of(&store);
            for _ in 0..25 {
                match next(20) {
                    0 => {
                        version += 1;
                        store.admit(Some(&Validator::ETag(format!("{version}"))), Some(LEN));
                    }
                    1 => store.publish().unwrap(),
                    _ => {
                        let pos = next(LEN);
                        let len = (1 + next(8_000)).min(LEN - pos);
                        let bytes: Vec<u8> =
                            (pos..pos + len).map(|at| byte(key, version, at)).collect();
                        store.set_total_len(Some(LEN));
                        store.insert(pos, &Bytes::from(bytes), 0..0);
                    }
                }
            }
        }
        CRASH_POINT.with(|hook| hook.borrow_mut().take());
        let _ = std::fs::remove_dir_all(&root);
        assert!(points.get() > 100, "{} crash points", points.get());
        assert!(
            claimed.get() > 0,
            "nothing was ever claimed: the check checked nothing"
        );
    }
}
