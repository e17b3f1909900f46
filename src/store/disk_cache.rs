//! [`DiskCache`]: a directory of resources kept on disk, under one byte budget, evicted
//! least recently used first.

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::disk::DiskStore;
use super::index_file::{Index, fnv1a};

/// A directory of resources kept on disk, under a byte budget across all of them.
///
/// Each resource is named by a key you choose: what identifies its content, not where it
/// is fetched from today (a URL without its expiring token, a track id). It is kept as two
/// files, named after a hash of the key: a sparse data file with its bytes at their
/// offsets, and an index of the ranges held, the key, the total length and the
/// [`Validator`](super::Validator).
///
/// - **Budget.** The bytes held across all resources stay within the budget. When a
///   resource needs room, the least recently used resources that are not open are deleted
///   whole; the resources open (a [`DiskStore`] alive) are never evicted. What still does
///   not fit is not kept (it still streams).
/// - **Crash safety.** A store writes its bytes, syncs the data file, and only then
///   publishes the ranges in a new index (written beside the old one, synced, renamed over
///   it). A crash or a kill at any moment leaves an index that claims only bytes the data
///   file holds; bytes written after the last publish are fetched again.
/// - **After a crash**, the bytes written past a resource's last published range are cut
///   when the cache opens; those written into its gaps stay on disk, uncounted, until
///   they are written again.
/// - **One process.** A directory is used by one `DiskCache` at a time; two processes
///   sharing one directory are not coordinated.
///
/// ```
/// use bytes::Bytes;
/// use kithara_stream::store::{DiskCache, Store};
///
/// let dir = std::env::temp_dir().join(format!("kithara-doc-{}", std::process::id()));
/// let cache = DiskCache::open(&dir, 1 << 20)?;
/// {
///     let mut store = cache.store("track-1")?;
///     store.set_total_len(Some(10));
///     store.insert(0, &Bytes::from_static(b"hello"), 0..0);
/// } // Dropping the store publishes what it holds.
/// let mut again = DiskCache::open(&dir, 1 << 20)?.store("track-1")?;
/// assert_eq!(again.ranges(), [0..5]);
/// assert_eq!(again.total_len(), Some(10));
/// assert_eq!(again.get(1, 3).as_deref(), Some(&b"ell"[..]));
/// # drop(again);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct DiskCache {
    state: Arc<Mutex<CacheState>>,
}

impl core::fmt::Debug for DiskCache {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let state = lock(&self.state);
        f.debug_struct("DiskCache")
            .field("dir", &state.dir)
            .field("budget", &state.budget)
            .field("used", &state.used)
            .field("resources", &state.entries.len())
            .finish()
    }
}

/// One resource of the cache.
#[derive(Debug)]
struct Entry {
    /// The bytes it holds.
    held: u64,
    /// When it was last opened or closed, on the cache's clock.
    last_used: u64,
    open: bool,
}

/// What the stores of one cache share.
#[derive(Debug)]
pub(crate) struct CacheState {
    dir: PathBuf,
    budget: u64,
    /// The bytes held across resources.
    used: u64,
    /// By file name (the key's hash).
    entries: HashMap<String, Entry>,
    clock: u64,
}

pub(crate) fn lock(state: &Mutex<CacheState>) -> MutexGuard<'_, CacheState> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl DiskCache {
    /// Opens (creating it if need be) the cache in `dir`, holding at most `budget` bytes.
    ///
    /// It reads every index in the directory: one that is damaged is deleted with its
    /// data, as are data files without an index and temporary files a crash left behind.
    /// If what is held is over the budget (a smaller budget than last time), the least
    /// recently used resources are deleted until it fits.
    ///
    /// # Errors
    ///
    /// If the directory cannot be created or read.
    pub fn open(dir: impl AsRef<Path>, budget: u64) -> io::Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir)?;
        let mut found = Vec::new();
        let mut data_files = Vec::new();
        for item in fs::read_dir(&dir)? {
            let path = item?.path();
            let Some(name) = path.file_name().and_then(|name| name.to_str()) else {
                continue;
            };
            if let Some(stem) = name.strip_suffix(".index") {
                let used = fs::metadata(&path)?.modified().ok();
                match Index::read(&path)? {
                    Some(index) if file_name(&index.key) == stem => {
                        let end = index.runs.iter().last().map_or(0, |run| run.end);
                        cut_unclaimed_tail(&dir.join(format!("{stem}.data")), end);
                        found.push((used, String::from(stem), index.held()));
                    }
                    _ => remove_files(&dir, stem)?,
                }
            } else if let Some(stem) = name.strip_suffix(".data") {
                data_files.push(String::from(stem));
            } else if name.ends_with(".index.tmp") {
                remove(&path)?;
            }
        }
        // Oldest first: the clock orders them as their files' times did.
        found.sort();
        let mut state = CacheState {
            dir,
            budget,
            used: 0,
            entries: HashMap::new(),
            clock: 0,
        };
        for (_, name, held) in found {
            state.clock += 1;
            state.used += held;
            let entry = Entry {
                held,
                last_used: state.clock,
                open: false,
            };
            state.entries.insert(name, entry);
        }
        for stem in data_files {
            if !state.entries.contains_key(&stem) {
                remove(&state.dir.join(format!("{stem}.data")))?;
            }
        }
        state.make_room(None, 0)?;
        Ok(Self {
            state: Arc::new(Mutex::new(state)),
        })
    }

    /// Opens the resource named `key`: what the cache holds of it, or nothing yet.
    ///
    /// # Errors
    ///
    /// `ResourceBusy` if a store of `key` is open already (one at a time); an I/O error
    /// if its files cannot be opened.
    pub fn store(&self, key: &str) -> io::Result<DiskStore> {
        let name = file_name(key);
        let mut state = lock(&self.state);
        if state.entries.get(&name).is_some_and(|entry| entry.open) {
            return Err(io::Error::new(
                io::ErrorKind::ResourceBusy,
                format!("the resource {key:?} is open in this cache already"),
            ));
        }
        let index_path = state.dir.join(format!("{name}.index"));
        let data_path = state.dir.join(format!("{name}.data"));
        let index = match Index::read(&index_path)? {
            Some(index) if index.key == key => index,
            // Another key with the same hash, or none: start afresh.
            _ => {
                state.forget(&name)?;
                Index {
                    key: String::from(key),
                    ..Index::default()
                }
            }
        };
        state.clock += 1;
        let clock = state.clock;
        let entry = state.entries.entry(name).or_insert(Entry {
            held: 0,
            last_used: clock,
            open: true,
        });
        entry.open = true;
        entry.last_used = clock;
        drop(state);
        DiskStore::open(self.state.clone(), index, index_path, data_path)
    }

    /// The budget, in bytes.
    pub fn budget(&self) -> u64 {
        lock(&self.state).budget
    }

    /// The bytes held across all resources.
    pub fn used(&self) -> u64 {
        lock(&self.state).used
    }

    /// The directory.
    pub fn dir(&self) -> PathBuf {
        lock(&self.state).dir.clone()
    }

    /// Deletes what the cache holds of `key`. Whether it held anything.
    ///
    /// # Errors
    ///
    /// `ResourceBusy` if a store of `key` is open; an I/O error if a file cannot be
    /// deleted.
    pub fn remove(&self, key: &str) -> io::Result<bool> {
        let name = file_name(key);
        let mut state = lock(&self.state);
        match state.entries.get(&name) {
            None => Ok(false),
            Some(entry) if entry.open => Err(io::Error::new(
                io::ErrorKind::ResourceBusy,
                format!("the resource {key:?} is open"),
            )),
            Some(_) => {
                // Another key with the same hash is not this one's to delete.
                let index = Index::read(&state.dir.join(format!("{name}.index")))?;
                if index.is_some_and(|index| index.key != key) {
                    return Ok(false);
                }
                state.forget(&name).map(|()| true)
            }
        }
    }
}

impl CacheState {
    /// Deletes the resource's files (the index first: data without an index is never
    /// served) and forgets it.
    fn forget(&mut self, name: &str) -> io::Result<()> {
        if let Some(entry) = self.entries.remove(name) {
            self.used -= entry.held;
        }
        remove_files(&self.dir, name)
    }

    /// Deletes the least recently used resources that are not open (nor `name`) until
    /// `want` more bytes fit in the budget, or none is left to delete.
    fn make_room(&mut self, name: Option<&str>, want: u64) -> io::Result<()> {
        while self.used + want > self.budget {
            let victim = self
                .entries
                .iter()
                .filter(|(other, entry)| !entry.open && Some(other.as_str()) != name)
                .min_by_key(|(_, entry)| entry.last_used)
                .map(|(other, _)| other.clone());
            match victim {
                Some(victim) => self.forget(&victim)?,
                None => break,
            }
        }
        Ok(())
    }

    /// Room for up to `want` more bytes of resource `name`, making it by eviction: the
    /// bytes granted, counted as held by it.
    pub(crate) fn reserve(&mut self, name: &str, want: u64) -> u64 {
        // An eviction that fails to delete a file leaves less room, never more.
        let _ = self.make_room(Some(name), want);
        let granted = self.budget.saturating_sub(self.used).min(want);
        self.used += granted;
        if let Some(entry) = self.entries.get_mut(name) {
            entry.held += granted;
        }
        granted
    }

    /// `bytes` of resource `name` are not held any more.
    pub(crate) fn release(&mut self, name: &str, bytes: u64) {
        if let Some(entry) = self.entries.get_mut(name) {
            let bytes = bytes.min(entry.held);
            entry.held -= bytes;
            self.used -= bytes;
        }
    }

    /// Resource `name` holds `held` bytes (as read from its index) and is open.
    pub(crate) fn opened(&mut self, name: &str, held: u64) {
        if let Some(entry) = self.entries.get_mut(name) {
            self.used = self.used - entry.held + held;
            entry.held = held;
        }
    }

    /// Resource `name` is closed, and was used now.
    pub(crate) fn closed(&mut self, name: &str) {
        self.clock += 1;
        let clock = self.clock;
        if let Some(entry) = self.entries.get_mut(name) {
            entry.open = false;
            entry.last_used = clock;
        }
    }

    /// The budget.
    pub(crate) fn budget(&self) -> u64 {
        self.budget
    }
}

/// The file name (without extension) of `key`: its hash, in hex.
fn file_name(key: &str) -> String {
    format!("{:016x}", fnv1a(key.as_bytes()))
}

/// Cuts the data file at `path` at `end`, where its index's last claim ends: what lies
/// past it was written and never published (a kill came first), and would take disk space
/// the budget does not count. Best effort: a file that cannot be cut stays as it is.
fn cut_unclaimed_tail(path: &Path, end: u64) {
    if let Ok(file) = fs::OpenOptions::new().write(true).open(path) {
        if file.metadata().is_ok_and(|meta| meta.len() > end) {
            let _ = file.set_len(end);
        }
    }
}

fn remove_files(dir: &Path, name: &str) -> io::Result<()> {
    remove(&dir.join(format!("{name}.index")))?;
    remove(&dir.join(format!("{name}.data")))
}

/// Deletes `path`; one already gone is fine.
fn remove(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two keys whose hashes collide share file names: removing one must not delete the
    /// other's files. (No colliding pair is at hand, so the other key's index is put under
    /// this key's name.)
    #[test]
    #[cfg_attr(miri, ignore = "file I/O")]
    fn removing_a_key_spares_another_key_under_the_same_name() {
        let dir = std::env::temp_dir().join(format!("kithara-collide-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let cache = DiskCache::open(&dir, 1 << 20).unwrap();
        let name = file_name("b");
        let index = Index {
            key: String::from("a"),
            ..Index::default()
        };
        index.write(&dir.join(format!("{name}.index"))).unwrap();
        lock(&cache.state).entries.insert(
            name.clone(),
            Entry {
                held: 0,
                last_used: 0,
                open: false,
            },
        );
        assert!(!cache.remove("b").unwrap());
        assert!(dir.join(format!("{name}.index")).exists());
        let _ = fs::remove_dir_all(&dir);
    }
}
