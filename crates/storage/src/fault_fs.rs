//! [`FaultFs`]: an in-memory [`Fs`] with a power switch. Data written but not synced, and
//! directory changes not followed by a directory sync, are lost when the power goes — all or
//! in part, with the write in flight torn at any byte. Tests use it to cut power at every
//! write/sync boundary of a workload; the simulator uses it as its nodes' disks.
//!
//! Owns: a model of files (durable bytes + unsynced writes), directories (durable entries +
//! unsynced links/unlinks), an operation counter with an optional cut point, and the rules of
//! what survives a cut ([`Restart`]). Must never: let an unsynced write survive except as a
//! prefix of the writes to its file (a torn write is the end of that prefix), or let an
//! operation succeed after the power went out.

use crate::fs::{Fs, FsFile};
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// What survives when the power comes back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restart {
    /// Only what was synced (file data by `sync_data`, directory entries by `sync_dir`).
    LoseUnsynced,
    /// Every completed write and directory change reached the disk; the operation in flight
    /// at the cut, if it was a write, left its first `torn_bytes` bytes, followed — when
    /// `zero_fill` — by zeros up to its full length (a file whose size grew but whose data
    /// never arrived).
    KeepCompleted { torn_bytes: usize, zero_fill: bool },
    /// A seeded choice per file and directory: a prefix of its unsynced changes survives, the
    /// last one possibly torn or zero-filled.
    Random { seed: u64 },
}

#[derive(Clone, Debug, Default)]
struct Inode {
    durable: Vec<u8>,
    /// Writes since the last sync, in order: (offset, bytes).
    unsynced: Vec<(usize, Vec<u8>)>,
}

/// Apply one write to a file's bytes (offset at most the length: no holes).
fn put(data: &mut Vec<u8>, offset: usize, bytes: &[u8]) {
    debug_assert!(offset <= data.len(), "writes never leave holes");
    let end = offset + bytes.len();
    if end > data.len() {
        data.resize(end, 0);
    }
    data[offset..end].copy_from_slice(bytes);
}

impl Inode {
    fn len(&self) -> usize {
        self.unsynced
            .iter()
            .fold(self.durable.len(), |n, (o, w)| n.max(o + w.len()))
    }
    fn content(&self) -> Vec<u8> {
        let mut out = self.durable.clone();
        for (o, w) in &self.unsynced {
            put(&mut out, *o, w);
        }
        out
    }
    /// Make every unsynced write durable.
    fn settle(&mut self) {
        for (o, w) in std::mem::take(&mut self.unsynced) {
            put(&mut self.durable, o, &w);
        }
    }
    /// A torn write reached the disk: its first `n` bytes, then (with `zero_fill`) zeros
    /// for the rest of its length.
    fn put_torn(&mut self, offset: usize, w: &[u8], n: usize, zero_fill: bool) {
        put(&mut self.durable, offset, &w[..n]);
        if zero_fill {
            put(&mut self.durable, offset + n, &vec![0; w.len() - n]);
        }
    }
}

#[derive(Clone, Debug)]
enum DirOp {
    Link(String, u64),
    Unlink(String),
}

#[derive(Clone, Debug, Default)]
struct Dir {
    live: BTreeMap<String, u64>,
    durable: BTreeMap<String, u64>,
    unsynced: Vec<DirOp>,
}

/// The write in flight when the power was cut.
#[derive(Clone, Debug)]
struct InFlight {
    ino: u64,
    offset: usize,
    buf: Vec<u8>,
}

#[derive(Clone, Debug, Default)]
struct State {
    inodes: BTreeMap<u64, Inode>,
    next_ino: u64,
    dirs: BTreeMap<PathBuf, Dir>,
    ops: u64,
    cut_after: Option<u64>,
    dead: bool,
    in_flight: Option<InFlight>,
    syncs: u64,
}

fn power_cut() -> io::Error {
    io::Error::other("power cut (FaultFs)")
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}: no such file", path.display()),
    )
}

fn split(path: &Path) -> io::Result<(PathBuf, String)> {
    let dir = path.parent().unwrap_or(Path::new("")).to_path_buf();
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path without a file name"))?
        .to_string_lossy()
        .into_owned();
    Ok((dir, name))
}

/// SplitMix64, for [`Restart::Random`] (deterministic per seed).
fn mix(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl State {
    /// Count a mutating operation; fail it (and everything after) at the cut point.
    fn op(&mut self) -> io::Result<()> {
        if self.dead {
            return Err(power_cut());
        }
        if self.cut_after.is_some_and(|n| self.ops >= n) {
            self.dead = true;
            return Err(power_cut());
        }
        self.ops += 1;
        Ok(())
    }

    fn dir(&mut self, dir: &Path) -> io::Result<&mut Dir> {
        self.dirs.get_mut(dir).ok_or_else(|| not_found(dir))
    }

    fn lookup(&self, path: &Path) -> io::Result<u64> {
        let (dir, name) = split(path)?;
        self.dirs
            .get(&dir)
            .and_then(|d| d.live.get(&name).copied())
            .ok_or_else(|| not_found(path))
    }

    fn restart(&mut self, mode: Restart) {
        let mut rng = match mode {
            Restart::Random { seed } => seed,
            _ => 0,
        };
        let in_flight = self.in_flight.take();
        for (&ino, inode) in self.inodes.iter_mut() {
            let unsynced = std::mem::take(&mut inode.unsynced);
            match mode {
                Restart::LoseUnsynced => {}
                Restart::KeepCompleted {
                    torn_bytes,
                    zero_fill,
                } => {
                    for (o, w) in unsynced {
                        put(&mut inode.durable, o, &w);
                    }
                    if let Some(f) = in_flight.as_ref().filter(|f| f.ino == ino) {
                        let n = torn_bytes.min(f.buf.len());
                        inode.put_torn(f.offset, &f.buf, n, zero_fill);
                    }
                }
                Restart::Random { .. } => {
                    let keep = (mix(&mut rng) % (unsynced.len() as u64 + 1)) as usize;
                    for (i, (o, w)) in unsynced.iter().enumerate() {
                        if i < keep {
                            put(&mut inode.durable, *o, w);
                        } else if i == keep {
                            let n = (mix(&mut rng) % (w.len() as u64 + 1)) as usize;
                            let zero_fill = mix(&mut rng).is_multiple_of(4);
                            inode.put_torn(*o, w, n, zero_fill);
                        }
                    }
                }
            }
        }
        for dir in self.dirs.values_mut() {
            let ops = std::mem::take(&mut dir.unsynced);
            let keep = match mode {
                Restart::LoseUnsynced => 0,
                Restart::KeepCompleted { .. } => ops.len(),
                Restart::Random { .. } => (mix(&mut rng) % (ops.len() as u64 + 1)) as usize,
            };
            for op in ops.into_iter().take(keep) {
                match op {
                    DirOp::Link(name, ino) => {
                        dir.durable.insert(name, ino);
                    }
                    DirOp::Unlink(name) => {
                        dir.durable.remove(&name);
                    }
                }
            }
            dir.live = dir.durable.clone();
        }
        let reachable: BTreeSet<u64> = self
            .dirs
            .values()
            .flat_map(|d| d.live.values().copied())
            .collect();
        self.inodes.retain(|ino, _| reachable.contains(ino));
        self.dead = false;
        self.cut_after = None;
    }
}

/// An in-memory file system that can lose power. Clones share the same disk.
#[derive(Clone, Debug, Default)]
pub struct FaultFs {
    state: Arc<Mutex<State>>,
}

/// A file of a [`FaultFs`].
#[derive(Debug)]
pub struct FaultFile {
    state: Arc<Mutex<State>>,
    ino: u64,
}

impl FaultFs {
    pub fn new() -> Self {
        FaultFs::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("FaultFs lock poisoned")
    }

    /// An independent copy of this disk as it is now (to try several crash outcomes of the
    /// same moment).
    pub fn fork(&self) -> FaultFs {
        FaultFs {
            state: Arc::new(Mutex::new(self.lock().clone())),
        }
    }

    /// Mutating operations so far (writes, syncs, creations, renames, removals, truncations).
    pub fn ops(&self) -> u64 {
        self.lock().ops
    }

    /// `sync_data` and `sync_dir` calls so far.
    pub fn syncs(&self) -> u64 {
        self.lock().syncs
    }

    /// Cut the power once `ops` operations have completed: the next one fails, and so does
    /// every later one until [`FaultFs::restart`].
    pub fn cut_power_after(&self, ops: u64) {
        self.lock().cut_after = Some(ops);
    }

    /// Cut the power now.
    pub fn cut_power(&self) {
        self.lock().dead = true;
    }

    /// True once the power is out.
    pub fn is_dead(&self) -> bool {
        self.lock().dead
    }

    /// Bring the power back: keep what `mode` says survived, drop the rest. Files opened
    /// before must not be used again (reopen the store).
    pub fn restart(&self, mode: Restart) {
        self.lock().restart(mode);
    }

    /// Total bytes of all files (synced or not), for size checks.
    pub fn total_bytes(&self) -> usize {
        self.lock().inodes.values().map(Inode::len).sum()
    }

    /// Overwrite bytes of a file in place and make it durable (for corruption tests).
    pub fn corrupt(&self, path: &Path, offset: usize, bytes: &[u8]) -> io::Result<()> {
        let mut st = self.lock();
        let ino = st.lookup(path)?;
        let inode = st.inodes.get_mut(&ino).expect("linked inode exists");
        let mut data = inode.content();
        if offset + bytes.len() > data.len() {
            data.resize(offset + bytes.len(), 0);
        }
        data[offset..offset + bytes.len()].copy_from_slice(bytes);
        inode.durable = data;
        inode.unsynced.clear();
        Ok(())
    }
}

impl FaultFile {
    /// One write at `offset` (`None`: at the end), counted as an operation; at the cut it
    /// becomes the write in flight.
    fn write(&self, buf: &[u8], offset: Option<u64>) -> io::Result<()> {
        let mut st = self.state.lock().expect("FaultFs lock poisoned");
        let len = st.inodes.get(&self.ino).ok_or_else(power_cut)?.len();
        let offset = offset.map_or(len, |o| o as usize);
        if offset > len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("write at {offset} past the end ({len}) would leave a hole"),
            ));
        }
        if let Err(e) = st.op() {
            if st.in_flight.is_none() && !buf.is_empty() {
                st.in_flight = Some(InFlight {
                    ino: self.ino,
                    offset,
                    buf: buf.to_vec(),
                });
            }
            return Err(e);
        }
        let inode = st.inodes.get_mut(&self.ino).ok_or_else(power_cut)?;
        inode.unsynced.push((offset, buf.to_vec()));
        Ok(())
    }
}

impl FsFile for FaultFile {
    fn append(&self, buf: &[u8]) -> io::Result<()> {
        self.write(buf, None)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.write(buf, Some(offset))
    }
    fn sync_data(&self) -> io::Result<()> {
        let mut st = self.state.lock().expect("FaultFs lock poisoned");
        st.op()?;
        st.syncs += 1;
        let inode = st.inodes.get_mut(&self.ino).ok_or_else(power_cut)?;
        inode.settle();
        Ok(())
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let st = self.state.lock().expect("FaultFs lock poisoned");
        if st.dead {
            return Err(power_cut());
        }
        let inode = st.inodes.get(&self.ino).ok_or_else(power_cut)?;
        let (lo, hi) = (offset as usize, offset as usize + buf.len());
        if hi > inode.len() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "read past the end of the file",
            ));
        }
        // The durable bytes, then each later write over the part of it that overlaps.
        let writes =
            std::iter::once((0, &inode.durable)).chain(inode.unsynced.iter().map(|(o, w)| (*o, w)));
        for (o, w) in writes {
            let (a, b) = (lo.max(o), hi.min(o + w.len()));
            if a < b {
                buf[a - lo..b - lo].copy_from_slice(&w[a - o..b - o]);
            }
        }
        Ok(())
    }
}

impl Fs for FaultFs {
    type File = FaultFile;

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.lock();
        if st.dead {
            return Err(power_cut());
        }
        // Directories are durable at once in this model (the WAL creates them only at init).
        let mut p = PathBuf::new();
        for c in dir.components() {
            p.push(c);
            st.dirs.entry(p.clone()).or_default();
        }
        Ok(())
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let st = self.lock();
        if st.dead {
            return Err(power_cut());
        }
        let d = st.dirs.get(dir).ok_or_else(|| not_found(dir))?;
        let mut names: Vec<String> = d.live.keys().cloned().collect();
        let prefix = dir.to_path_buf();
        for sub in st.dirs.keys() {
            if sub.parent() == Some(prefix.as_path()) {
                if let Some(n) = sub.file_name() {
                    names.push(n.to_string_lossy().into_owned());
                }
            }
        }
        Ok(names)
    }

    fn create(&self, path: &Path) -> io::Result<FaultFile> {
        let mut st = self.lock();
        st.op()?;
        let (dir, name) = split(path)?;
        let ino = st.next_ino;
        st.next_ino += 1;
        st.inodes.insert(ino, Inode::default());
        let d = st.dir(&dir)?;
        d.live.insert(name.clone(), ino);
        d.unsynced.push(DirOp::Link(name, ino));
        Ok(FaultFile {
            state: self.state.clone(),
            ino,
        })
    }

    fn open(&self, path: &Path) -> io::Result<FaultFile> {
        let st = self.lock();
        if st.dead {
            return Err(power_cut());
        }
        let ino = st.lookup(path)?;
        Ok(FaultFile {
            state: self.state.clone(),
            ino,
        })
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let st = self.lock();
        if st.dead {
            return Err(power_cut());
        }
        let ino = st.lookup(path)?;
        Ok(st.inodes[&ino].content())
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let mut st = self.lock();
        st.op()?;
        st.syncs += 1;
        let ino = st.lookup(path)?;
        let inode = st.inodes.get_mut(&ino).expect("linked inode exists");
        let mut data = inode.content();
        data.truncate(len as usize);
        inode.durable = data;
        inode.unsynced.clear();
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = self.lock();
        st.op()?;
        let ino = st.lookup(from)?;
        let (fdir, fname) = split(from)?;
        let (tdir, tname) = split(to)?;
        st.dir(&tdir)?;
        let d = st.dir(&fdir)?;
        d.live.remove(&fname);
        d.unsynced.push(DirOp::Unlink(fname));
        let d = st.dir(&tdir)?;
        d.live.insert(tname.clone(), ino);
        d.unsynced.push(DirOp::Link(tname, ino));
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut st = self.lock();
        st.op()?;
        st.lookup(path)?;
        let (dir, name) = split(path)?;
        let d = st.dir(&dir)?;
        d.live.remove(&name);
        d.unsynced.push(DirOp::Unlink(name));
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.lock();
        st.op()?;
        st.syncs += 1;
        let d = st.dir(dir)?;
        for op in std::mem::take(&mut d.unsynced) {
            match op {
                DirOp::Link(name, ino) => {
                    d.durable.insert(name, ino);
                }
                DirOp::Unlink(name) => {
                    d.durable.remove(&name);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    #[test]
    fn unsynced_data_and_unsynced_links_are_lost() {
        let fs = FaultFs::new();
        fs.create_dir_all(&p("/d")).unwrap();
        let f = fs.create(&p("/d/a")).unwrap();
        f.append(b"hello").unwrap();
        assert_eq!(
            f.write_at(b"x", 9).unwrap_err().kind(),
            io::ErrorKind::InvalidInput,
            "a hole"
        );
        fs.sync_dir(&p("/d")).unwrap();
        f.sync_data().unwrap();
        f.append(b" world").unwrap();
        let g = fs.create(&p("/d/b")).unwrap();
        g.append(b"x").unwrap();
        g.sync_data().unwrap();
        fs.restart(Restart::LoseUnsynced);
        assert_eq!(fs.read(&p("/d/a")).unwrap(), b"hello");
        assert!(fs.read(&p("/d/b")).is_err(), "link never synced");
    }

    #[test]
    fn cut_tears_the_write_in_flight() {
        let fs = FaultFs::new();
        fs.create_dir_all(&p("/d")).unwrap();
        let f = fs.create(&p("/d/a")).unwrap();
        fs.sync_dir(&p("/d")).unwrap();
        f.append(b"abc").unwrap();
        fs.cut_power_after(fs.ops());
        assert!(f.append(b"defgh").is_err());
        assert!(f.sync_data().is_err(), "dead until restart");
        fs.restart(Restart::KeepCompleted {
            torn_bytes: 2,
            zero_fill: true,
        });
        assert_eq!(fs.read(&p("/d/a")).unwrap(), b"abcde\0\0\0");
    }

    #[test]
    fn overwrites_of_a_zeroed_region_are_lost_or_torn_like_appends() {
        let fs = FaultFs::new();
        fs.create_dir_all(&p("/d")).unwrap();
        let f = fs.create(&p("/d/a")).unwrap();
        fs.sync_dir(&p("/d")).unwrap();
        f.append(b"ab\0\0\0\0\0\0").unwrap();
        f.sync_data().unwrap();
        f.write_at(b"cd", 2).unwrap();
        let mut got = [0u8; 4];
        f.read_exact_at(&mut got, 1).unwrap();
        assert_eq!(&got, b"bcd\0", "reads see unsynced writes");
        let lost = fs.fork();
        lost.restart(Restart::LoseUnsynced);
        assert_eq!(lost.read(&p("/d/a")).unwrap(), b"ab\0\0\0\0\0\0");
        fs.cut_power_after(fs.ops());
        assert!(f.write_at(b"efgh", 4).is_err());
        fs.restart(Restart::KeepCompleted {
            torn_bytes: 1,
            zero_fill: true,
        });
        assert_eq!(fs.read(&p("/d/a")).unwrap(), b"abcde\0\0\0");
    }

    #[test]
    fn rename_is_durable_only_after_dir_sync() {
        let fs = FaultFs::new();
        fs.create_dir_all(&p("/d")).unwrap();
        let f = fs.create(&p("/d/t.tmp")).unwrap();
        f.append(b"v1").unwrap();
        f.sync_data().unwrap();
        fs.sync_dir(&p("/d")).unwrap();
        fs.rename(&p("/d/t.tmp"), &p("/d/t")).unwrap();
        fs.restart(Restart::LoseUnsynced);
        assert!(fs.read(&p("/d/t")).is_err());
        assert_eq!(fs.read(&p("/d/t.tmp")).unwrap(), b"v1");
        fs.rename(&p("/d/t.tmp"), &p("/d/t")).unwrap();
        fs.sync_dir(&p("/d")).unwrap();
        fs.restart(Restart::LoseUnsynced);
        assert_eq!(fs.read(&p("/d/t")).unwrap(), b"v1");
    }

    #[test]
    fn random_restart_keeps_a_prefix_of_each_file() {
        for seed in 0..200 {
            let fs = FaultFs::new();
            fs.create_dir_all(&p("/d")).unwrap();
            let f = fs.create(&p("/d/a")).unwrap();
            fs.sync_dir(&p("/d")).unwrap();
            let all: Vec<u8> = (0..50u8).collect();
            for chunk in all.chunks(7) {
                f.append(chunk).unwrap();
            }
            fs.restart(Restart::Random { seed });
            let got = fs.read(&p("/d/a")).unwrap();
            // Every byte is either the original byte at that position or a zero fill.
            for (i, b) in got.iter().enumerate() {
                assert!(*b == all[i] || *b == 0, "seed {seed}: byte {i}");
            }
        }
    }
}
