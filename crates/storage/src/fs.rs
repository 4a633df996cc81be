//! The file-system seam under the write-ahead log: the few operations the WAL needs, so that
//! tests and the simulator can swap the real disk for [`crate::FaultFs`], which loses unsynced
//! data and tears writes on a power cut.
//!
//! Owns: the [`Fs`] and [`FsFile`] contracts and [`StdFs`], the real implementation over
//! `std::fs`. Must never: buffer writes of its own or reorder them — durability is exactly
//! what `sync_data` / `sync_dir` promise, nothing more.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// An open file: written at its end or over bytes it already has (a preallocated, zero-filled
/// region), read at any offset, synced on demand. Shared between the thread that writes and
/// the thread that syncs, hence `&self` everywhere.
pub trait FsFile: Send + Sync + 'static {
    /// Append `buf` at the end of the file.
    fn append(&self, buf: &[u8]) -> io::Result<()>;
    /// Write `buf` at `offset`, overwriting what is there and growing the file if it ends
    /// past the end. `offset` must not be past the end: callers never leave holes
    /// ([`crate::FaultFs`] rejects one with `InvalidInput`).
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Make the file's data (and its length) durable: `fdatasync`.
    fn sync_data(&self) -> io::Result<()>;
    /// Fill `buf` from `offset`; an error if the file is shorter.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
}

/// The directory and file operations the WAL uses. Paths are absolute or relative to the
/// process; names in a directory are plain UTF-8 file names.
/// Clones are handles on the same file system (a snapshot's file is written on another
/// thread through one).
pub trait Fs: Clone + Send + Sync + 'static {
    type File: FsFile;
    /// Create a directory and its parents (like `mkdir -p`).
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Names of the entries of `dir`, in no particular order.
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Create `path` empty (truncating an existing file) and open it for writing.
    fn create(&self, path: &Path) -> io::Result<Self::File>;
    /// Open an existing file for writing and reading.
    fn open(&self, path: &Path) -> io::Result<Self::File>;
    /// The whole content of `path`.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Cut `path` to `len` bytes and make that durable.
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()>;
    /// Atomically replace `to` with `from` (durable only after [`Fs::sync_dir`]).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Remove a file (durable only after [`Fs::sync_dir`]).
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Make creations, renames and removals in `dir` durable: `fsync` of the directory.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// The real file system.
#[derive(Clone, Copy, Debug, Default)]
pub struct StdFs;

/// A real file.
#[derive(Debug)]
pub struct StdFile(File);

impl FsFile for StdFile {
    fn append(&self, buf: &[u8]) -> io::Result<()> {
        (&self.0).seek(SeekFrom::End(0))?;
        (&self.0).write_all(buf)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        FileExt::write_all_at(&self.0, buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        FileExt::read_exact_at(&self.0, buf, offset)
    }
}

impl Fs for StdFs {
    type File = StdFile;
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            names.push(entry?.file_name().to_string_lossy().into_owned());
        }
        Ok(names)
    }
    fn create(&self, path: &Path) -> io::Result<StdFile> {
        let f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(path)?;
        Ok(StdFile(f))
    }
    fn open(&self, path: &Path) -> io::Result<StdFile> {
        // Not O_APPEND: Linux ignores pwrite's offset on such files.
        let f = OpenOptions::new().read(true).write(true).open(path)?;
        Ok(StdFile(f))
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let f = OpenOptions::new().write(true).open(path)?;
        f.set_len(len)?;
        f.sync_all()
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}
