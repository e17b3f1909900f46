//! The index file of one resource in a [`DiskCache`](super::DiskCache): its key, length,
//! validator and held ranges, checksummed, and written so that it is replaced whole or not
//! at all.

use alloc::string::String;
use alloc::vec::Vec;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use super::Validator;
use super::runs::Runs;

/// The first bytes of every index file: the format and its version.
const MAGIC: &[u8; 8] = b"KSTIDX01";

/// What an index file records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Index {
    pub(crate) key: String,
    pub(crate) len: Option<u64>,
    pub(crate) validator: Option<Validator>,
    pub(crate) runs: Runs,
}

/// FNV-1a, 64 bits: the index's checksum, and the file name of a key.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Index {
    /// The bytes the runs cover.
    pub(crate) fn held(&self) -> u64 {
        self.runs.iter().map(|run| run.end - run.start).sum()
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.key.len());
        out.extend_from_slice(MAGIC);
        put_bytes(&mut out, self.key.as_bytes());
        match self.len {
            Some(len) => {
                out.push(1);
                out.extend_from_slice(&len.to_le_bytes());
            }
            None => out.push(0),
        }
        match &self.validator {
            None => out.push(0),
            Some(Validator::ETag(tag)) => {
                out.push(1);
                put_bytes(&mut out, tag.as_bytes());
            }
            Some(Validator::LastModified(date)) => {
                out.push(2);
                put_bytes(&mut out, date.as_bytes());
            }
        }
        let runs = self.runs.ranges();
        out.extend_from_slice(&(runs.len() as u64).to_le_bytes());
        for run in runs {
            out.extend_from_slice(&run.start.to_le_bytes());
            out.extend_from_slice(&run.end.to_le_bytes());
        }
        let sum = fnv1a(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    /// Decodes an index, or `None` if the bytes are not a whole, well-formed one: a wrong
    /// magic or checksum, runs out of order, overlapping or past the length.
    fn decode(bytes: &[u8]) -> Option<Self> {
        let (body, sum) = bytes.split_at_checked(bytes.len().checked_sub(8)?)?;
        if fnv1a(body).to_le_bytes() != sum {
            return None;
        }
        let mut input = body.strip_prefix(MAGIC)?;
        let key = String::from_utf8(take_bytes(&mut input)?.to_vec()).ok()?;
        let len = match take(&mut input, 1)?[0] {
            0 => None,
            1 => Some(take_u64(&mut input)?),
            _ => return None,
        };
        let validator = match take(&mut input, 1)?[0] {
            0 => None,
            tag @ (1 | 2) => {
                let value = String::from_utf8(take_bytes(&mut input)?.to_vec()).ok()?;
                Some(if tag == 1 {
                    Validator::ETag(value)
                } else {
                    Validator::LastModified(value)
                })
            }
            _ => return None,
        };
        let count = take_u64(&mut input)?;
        let mut runs = Runs::default();
        let mut last_end = None;
        for _ in 0..count {
            let (start, end) = (take_u64(&mut input)?, take_u64(&mut input)?);
            // Disjoint, in order, not touching (merged), within the length.
            let ordered = last_end.is_none_or(|last| start > last);
            if !ordered || start >= end || len.is_some_and(|len| end > len) {
                return None;
            }
            runs.add(start, end);
            last_end = Some(end);
        }
        input.is_empty().then_some(Self {
            key,
            len,
            validator,
            runs,
        })
    }

    /// Reads the index at `path`: `Ok(None)` if there is none or it is not well-formed.
    pub(crate) fn read(path: &Path) -> io::Result<Option<Self>> {
        match fs::read(path) {
            Ok(bytes) => Ok(Self::decode(&bytes)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Replaces the index at `path` whole: written to a temporary file beside it, synced,
    /// then renamed over it, and (on Unix) the directory synced, so that the rename is on
    /// disk before anything the new index allows (emptying the data file after a clear,
    /// say) is. A crash leaves the old index or the new one, never a mix.
    pub(crate) fn write(&self, path: &Path) -> io::Result<()> {
        let tmp = path.with_extension("index.tmp");
        let mut file = File::create(&tmp)?;
        file.write_all(&self.encode())?;
        file.sync_all()?;
        drop(file);
        super::disk::crash_point();
        fs::rename(&tmp, path)?;
        super::disk::crash_point();
        #[cfg(unix)]
        {
            let dir = path
                .parent()
                .filter(|dir| !dir.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn take<'a>(input: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    let (head, rest) = input.split_at_checked(n)?;
    *input = rest;
    Some(head)
}

fn take_u64(input: &mut &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(take(input, 8)?.try_into().ok()?))
}

fn take_bytes<'a>(input: &mut &'a [u8]) -> Option<&'a [u8]> {
    let n = usize::try_from(take_u64(input)?).ok()?;
    take(input, n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    fn sample() -> Index {
        let mut runs = Runs::default();
        runs.add(0, 100);
        runs.add(500, 900);
        Index {
            key: "track-7".to_string(),
            len: Some(1_000),
            validator: Some(Validator::ETag("\"abc\"".to_string())),
            runs,
        }
    }

    #[test]
    fn an_index_reads_back_as_written() {
        let index = sample();
        assert_eq!(Index::decode(&index.encode()), Some(index.clone()));
        assert_eq!(index.held(), 500);
        let bare = Index::default();
        assert_eq!(Index::decode(&bare.encode()), Some(bare));
    }

    #[test]
    fn a_damaged_or_cut_index_is_refused() {
        let bytes = sample().encode();
        for cut in 0..bytes.len() {
            assert_eq!(Index::decode(&bytes[..cut]), None, "cut at {cut}");
        }
        for at in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x40;
            assert_eq!(Index::decode(&damaged), None, "byte {at} flipped");
        }
    }
}
