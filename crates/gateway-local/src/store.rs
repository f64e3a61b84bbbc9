//! A directory standing in for the bucket: object keys are relative paths, writes are atomic
//! (a temporary file renamed into place), and metadata lives beside the data under `.mftg/meta`.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::time::UNIX_EPOCH;

use gateway::ports::{Object, ObjectMeta, ObjectReader, ObjectStore, ObjectWriter};
use gateway::{GatewayError, Millis, Result};

use crate::blocking;

/// Files whose names start with this are writes in progress, never objects.
pub const TEMP_PREFIX: &str = ".mftg-tmp-";
/// The gateway's own folder in the data directory; never part of the bucket.
pub const PRIVATE_DIR: &str = ".mftg";

/// [`ObjectStore`] over a directory.
#[derive(Debug, Clone)]
pub struct DirStore {
    root: PathBuf,
}

fn err(e: impl std::fmt::Display) -> GatewayError {
    GatewayError::port("directory store", e)
}

impl DirStore {
    /// A store rooted at `root` (created if missing).
    pub fn new(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(err)?;
        Ok(DirStore { root })
    }

    /// The data directory the keys are paths under.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file behind `key`, refusing keys that could leave the directory.
    pub fn path(&self, key: &str) -> Result<PathBuf> {
        let rel = Path::new(key);
        let ok = !key.is_empty()
            && !key.ends_with('/')
            && rel.components().all(|c| matches!(c, Component::Normal(_)))
            && !key.starts_with(PRIVATE_DIR)
            && !key.contains('\\')
            && !key.contains('\0');
        if !ok {
            return Err(GatewayError::InvalidName(format!("object key {key:?}")));
        }
        Ok(self.root.join(rel))
    }

    fn meta_path(&self, key: &str) -> PathBuf {
        self.root
            .join(PRIVATE_DIR)
            .join("meta")
            .join(format!("{key}.json"))
    }

    fn meta_of(&self, key: &str, path: &Path) -> Result<Option<ObjectMeta>> {
        let fs_meta = match std::fs::metadata(path) {
            Ok(m) if m.is_file() => m,
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(err(e)),
        };
        let metadata = match std::fs::read(self.meta_path(key)) {
            Ok(b) => serde_json::from_slice(&b).unwrap_or_default(),
            Err(_) => BTreeMap::new(),
        };
        Ok(Some(object_meta(&fs_meta, metadata)))
    }

    /// Writes `data` as `path` so that no reader ever sees part of it, and it survives a crash
    /// once this returns: written in full to a file under `AS2/tmp/` (not in the folder SFTP
    /// users see), flushed to disk, renamed into place, and the folder's entry flushed too.
    fn write_atomic(&self, path: &Path, data: &[u8]) -> Result<std::fs::Metadata> {
        use std::io::Write as _;
        let mut scratch = self.scratch(path)?;
        scratch.file.write_all(data).map_err(err)?;
        scratch.commit(path)
    }

    /// A new file under `AS2/tmp/` that becomes `path` once committed (private objects' files
    /// readable by the owner only).
    fn scratch(&self, path: &Path) -> Result<Scratch> {
        let private = path
            .strip_prefix(&self.root)
            .ok()
            .and_then(|p| p.to_str())
            .is_some_and(gateway::layout::is_private);
        let (file, tmp) = new_scratch_file(
            &self.root.join(gateway::layout::TMP),
            "",
            if private { 0o600 } else { 0o644 },
        )
        .map_err(err)?;
        Ok(Scratch {
            file,
            tmp: Some(tmp),
        })
    }

    /// Removes what writes interrupted by a crash left under `AS2/tmp/`; returns how many.
    pub fn clean_scratch(&self) -> Result<usize> {
        let scratch = self.root.join(gateway::layout::TMP);
        let entries = match std::fs::read_dir(&scratch) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(err(e)),
        };
        let mut n = 0;
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(TEMP_PREFIX)
                && std::fs::remove_file(e.path()).is_ok()
            {
                n += 1;
            }
        }
        Ok(n)
    }
}

/// What a [`DirWriter`] gathers before a write and a [`DirReader`] reads at a time: a disk needs
/// no larger calls.
const PART: usize = 1024 * 1024;

/// A file being written under `AS2/tmp/`; removed if dropped before it is committed.
struct Scratch {
    file: std::fs::File,
    tmp: Option<PathBuf>,
}

impl Scratch {
    /// Flushes the file to disk, renames it to `path` and flushes the folder's entry; returns
    /// the file's metadata as it was committed.
    fn commit(mut self, path: &Path) -> Result<std::fs::Metadata> {
        let tmp = self.tmp.take().ok_or_else(|| err("committed twice"))?;
        let done = name_durably(&self.file, &tmp, path).and_then(|()| self.file.metadata());
        if done.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        done.map_err(err)
    }
}

/// What the store tells of a file, from its file system metadata and its side file's metadata.
fn object_meta(fs_meta: &std::fs::Metadata, metadata: BTreeMap<String, String>) -> ObjectMeta {
    let modified = fs_meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .unwrap_or_default();
    // When the file's inode last changed: set by the kernel when the file is made, written or
    // renamed into place, never by a client (which may give a new upload the time of the one
    // before: SFTP clients keep a file's modification time).
    let changed = {
        use std::os::unix::fs::MetadataExt as _;
        (i128::from(fs_meta.ctime()) * 1_000_000_000 + i128::from(fs_meta.ctime_nsec())).max(0)
    };
    ObjectMeta {
        size: fs_meta.len(),
        // Size, modification time and change time identify a version of a file well enough to
        // tell a redelivered event from a new upload; a directory has no versions of its own.
        etag: format!("{:x}-{:x}-{changed:x}", fs_meta.len(), modified.as_nanos()),
        version: None,
        modified: Millis(i64::try_from(modified.as_millis()).unwrap_or(i64::MAX)),
        written: Millis(i64::try_from(changed / 1_000_000).unwrap_or(i64::MAX)),
        metadata,
    }
}

/// Creates a new file in `dir` (made first if missing), with permissions `mode`, for a write in
/// progress; returns it and its path. Its name starts with [`TEMP_PREFIX`] and `kind`, then this
/// process's id and a count of the names it has given: no other live process or thread picks
/// it, and no random bytes are drawn for it. A file of that name left by an earlier process with
/// the same id is passed over (`create_new` refuses it) for the next name.
pub(crate) fn new_scratch_file(
    dir: &Path,
    kind: &str,
    mode: u32,
) -> std::io::Result<(std::fs::File, PathBuf)> {
    use std::os::unix::fs::OpenOptionsExt as _;
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let pid = std::process::id();
    let mut passed_over = 0;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("{TEMP_PREFIX}{kind}{pid:x}-{n:x}"));
        let made = in_folder(dir, || {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(&path)
        });
        match made {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && passed_over < 64 => {
                passed_over += 1;
            }
            made => return made.map(|file| (file, path)),
        }
    }
}

/// Runs `make` (which creates an entry in `dir`); when `dir` is missing, creates it and runs
/// `make` again. Folders are made only when a write needs them, not probed before each one.
fn in_folder<T>(dir: &Path, make: impl Fn() -> std::io::Result<T>) -> std::io::Result<T> {
    match make() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            make_folder(dir)?;
            make()
        }
        done => done,
    }
}

/// Gives the file `tmp`, open as `file`, the name `path`, so that it survives a power loss
/// once this returns, not only a crash of the process: its bytes are flushed to disk before it
/// gets the name (a name found after a power loss never has its bytes missing), and the
/// folder's entry after (the name is not lost). A missing folder is made as [`make_folder`]
/// makes it. `tmp` is left as it is when this fails; the caller removes it.
fn name_durably(file: &std::fs::File, tmp: &Path, path: &Path) -> std::io::Result<()> {
    let dir = folder_of(path)?;
    file.sync_all()?;
    in_folder(dir, || std::fs::rename(tmp, path))?;
    std::fs::File::open(dir)?.sync_all()
}

/// Writes `bytes` as the file `path`, as [`replace_file_with`] does.
pub fn replace_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    replace_file_with(path, |f| f.write_all(bytes))
}

/// Writes the file `path` whole, with what `fill` writes into it: to a file beside it (its name
/// starts with `.`, as an upload in progress does; with the old file's permissions, if there
/// was one), named as [`name_durably`] names it. A reader, a crash or a power loss never leaves
/// half a file, and once this returns the new one is on disk.
pub fn replace_file_with(
    path: &Path,
    fill: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"))?
        .to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut f = in_folder(folder_of(path)?, || std::fs::File::create(&tmp))?;
        if let Ok(old) = std::fs::metadata(path) {
            f.set_permissions(old.permissions())?;
        }
        fill(&mut f)?;
        name_durably(&f, &tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// The folder that holds `path`: `.` for a relative path's first component.
fn folder_of(path: &Path) -> std::io::Result<&Path> {
    match path.parent() {
        Some(p) if p.as_os_str().is_empty() => Ok(Path::new(".")),
        Some(p) => Ok(p),
        None => Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no folder above the root",
        )),
    }
}

/// Creates `dir` and the folders missing above it, each one's entry flushed to disk in the
/// folder that holds it: a file committed into a new folder (and that folder flushed) then
/// survives a power loss with the folders above it, not only a crash of the process. A folder
/// someone else made at the same moment is flushed too, as its maker may not have done so yet.
fn make_folder(dir: &Path) -> std::io::Result<()> {
    use std::io::ErrorKind;
    let parent = folder_of(dir)?;
    let create = || match std::fs::create_dir(dir) {
        Err(e) if e.kind() == ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        done => done,
    };
    match create() {
        Err(e) if e.kind() == ErrorKind::NotFound => {
            make_folder(parent)?;
            create()?;
        }
        done => done?,
    }
    std::fs::File::open(parent)?.sync_all()
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// An object of a [`DirStore`] being written in parts: a file under `AS2/tmp/`, renamed into
/// place by `finish`, removed if the writer is dropped first. The file is made when the first
/// part is written out: an object smaller than a part is made, written and committed in one
/// blocking call by `finish` (as a `put` would be), not three.
pub struct DirWriter {
    store: DirStore,
    key: String,
    /// The file behind `key` (checked when the writer was made).
    path: PathBuf,
    metadata: BTreeMap<String, String>,
    scratch: WriterFile,
    buffer: Vec<u8>,
}

/// Where a [`DirWriter`]'s file stands.
enum WriterFile {
    /// Nothing written out yet: no file.
    NotYet,
    Open(Scratch),
    /// A write to it failed: the file is gone, and so is what the writer was given.
    Failed,
}

impl WriterFile {
    /// Appends `buffer` to the file, made at `path`'s scratch place if there is none yet;
    /// returns the file.
    fn write(self, store: &DirStore, path: &Path, buffer: &[u8]) -> Result<Scratch> {
        use std::io::Write as _;
        let mut scratch = match self {
            WriterFile::NotYet => store.scratch(path)?,
            WriterFile::Open(scratch) => scratch,
            WriterFile::Failed => return Err(err("a write failed before")),
        };
        scratch.file.write_all(buffer).map_err(err)?;
        Ok(scratch)
    }
}

impl std::fmt::Debug for DirWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirWriter")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl DirWriter {
    /// Writes the buffered bytes to the file (made now if it is not yet), on the blocking
    /// threads.
    async fn flush(&mut self) -> Result<()> {
        let scratch = std::mem::replace(&mut self.scratch, WriterFile::Failed);
        let buffer = std::mem::take(&mut self.buffer);
        let (store, path) = (self.store.clone(), self.path.clone());
        let (scratch, buffer) = blocking::run(&store, "directory store", move |s: &DirStore| {
            Ok((scratch.write(s, &path, &buffer)?, buffer))
        })
        .await?;
        self.scratch = WriterFile::Open(scratch);
        self.buffer = buffer;
        self.buffer.clear();
        Ok(())
    }
}

impl ObjectWriter for DirWriter {
    async fn write(&mut self, data: &[u8]) -> Result<()> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= PART {
            self.flush().await?;
        }
        Ok(())
    }

    async fn finish(mut self) -> Result<ObjectMeta> {
        let scratch = std::mem::replace(&mut self.scratch, WriterFile::Failed);
        let buffer = std::mem::take(&mut self.buffer);
        let (key, path, metadata) = (
            std::mem::take(&mut self.key),
            std::mem::take(&mut self.path),
            std::mem::take(&mut self.metadata),
        );
        blocking::run(&self.store, "directory store", move |s: &DirStore| {
            let scratch = scratch.write(s, &path, &buffer)?;
            s.put_metadata(&key, &metadata)?;
            Ok(object_meta(&scratch.commit(&path)?, metadata))
        })
        .await
    }
}

/// An object of a [`DirStore`] read in parts, on the blocking threads.
#[derive(Debug)]
pub struct DirReader {
    file: Option<std::fs::File>,
    /// A part read already (all of a small file, read when it was opened).
    ready: Option<Vec<u8>>,
}

impl DirReader {
    /// `file` read in parts from where it stands.
    pub(crate) fn of(file: std::fs::File) -> Self {
        DirReader {
            file: Some(file),
            ready: None,
        }
    }

    /// `file` of `size` bytes: read at once when it is one part, in the same blocking call as
    /// the open (a small object costs one hand-off to the blocking threads, not three).
    fn open(file: std::fs::File, size: u64) -> std::io::Result<Self> {
        use std::io::Read as _;
        if size >= PART as u64 {
            return Ok(DirReader::of(file));
        }
        let mut all = Vec::with_capacity(size as usize);
        (&file).read_to_end(&mut all)?;
        Ok(DirReader {
            file: None,
            ready: (!all.is_empty()).then_some(all),
        })
    }
}

impl ObjectReader for DirReader {
    async fn next(&mut self) -> Result<Option<Vec<u8>>> {
        use std::io::Read as _;
        if let Some(part) = self.ready.take() {
            return Ok(Some(part));
        }
        let Some(file) = self.file.take() else {
            return Ok(None);
        };
        let (file, part) = crate::blocking::call("directory store", move || {
            let mut part = Vec::with_capacity(PART);
            let r = (&file).take(PART as u64).read_to_end(&mut part);
            r.map(|_| (file, part)).map_err(err)
        })
        .await?;
        if part.is_empty() {
            return Ok(None);
        }
        self.file = Some(file);
        Ok(Some(part))
    }
}

/// Every file call runs where blocking is allowed, never on the async workers.
impl ObjectStore for DirStore {
    async fn put(
        &self,
        key: &str,
        data: Vec<u8>,
        metadata: BTreeMap<String, String>,
    ) -> Result<ObjectMeta> {
        let key = key.to_string();
        blocking::run(self, "directory store", move |s: &DirStore| {
            s.put_now(&key, data, metadata)
        })
        .await
    }

    /// In one blocking call.
    async fn put_all(&self, objects: Vec<(String, Vec<u8>)>) -> Result<()> {
        blocking::run(self, "directory store", move |s: &DirStore| {
            for (key, data) in objects {
                s.put_now(&key, data, BTreeMap::new())?;
            }
            Ok(())
        })
        .await
    }

    async fn get(&self, key: &str) -> Result<Option<Object>> {
        let key = key.to_string();
        blocking::run(self, "directory store", move |s: &DirStore| s.get_now(&key)).await
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>> {
        let key = key.to_string();
        blocking::run(self, "directory store", move |s: &DirStore| {
            s.head_now(&key)
        })
        .await
    }

    async fn copy(&self, from: &str, _version: Option<&str>, to: &str) -> Result<ObjectMeta> {
        let (from, to) = (from.to_string(), to.to_string());
        blocking::run(self, "directory store", move |s: &DirStore| {
            s.copy_now(&from, &to)
        })
        .await
    }

    async fn delete(&self, key: &str, _version: Option<&str>) -> Result<()> {
        let key = key.to_string();
        blocking::run(self, "directory store", move |s: &DirStore| {
            s.delete_now(&key)
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<(String, ObjectMeta)>> {
        let prefix = prefix.to_string();
        blocking::run(self, "directory store", move |s: &DirStore| {
            s.list_now(&prefix)
        })
        .await
    }

    type Writer = DirWriter;
    type Reader = DirReader;

    async fn writer(&self, key: &str, metadata: BTreeMap<String, String>) -> Result<DirWriter> {
        Ok(DirWriter {
            store: self.clone(),
            key: key.to_string(),
            path: self.path(key)?,
            metadata,
            scratch: WriterFile::NotYet,
            buffer: Vec::new(),
        })
    }

    async fn reader(&self, key: &str) -> Result<Option<(ObjectMeta, DirReader)>> {
        let key = key.to_string();
        blocking::run(self, "directory store", move |s: &DirStore| {
            let path = s.path(&key)?;
            let Some(meta) = s.meta_of(&key, &path)? else {
                return Ok(None);
            };
            match std::fs::File::open(&path) {
                Ok(f) => Ok(Some((
                    meta.clone(),
                    DirReader::open(f, meta.size).map_err(err)?,
                ))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(err(e)),
            }
        })
        .await
    }
}

impl DirStore {
    fn put_now(
        &self,
        key: &str,
        data: Vec<u8>,
        metadata: BTreeMap<String, String>,
    ) -> Result<ObjectMeta> {
        let path = self.path(key)?;
        self.put_metadata(key, &metadata)?;
        Ok(object_meta(&self.write_atomic(&path, &data)?, metadata))
    }

    /// Writes (or, when empty, removes) the side file of `key`'s metadata.
    fn put_metadata(&self, key: &str, metadata: &BTreeMap<String, String>) -> Result<()> {
        let m = self.meta_path(key);
        if metadata.is_empty() {
            let _ = std::fs::remove_file(m);
            return Ok(());
        }
        self.write_atomic(&m, &serde_json::to_vec(metadata).map_err(err)?)
            .map(drop)
    }

    fn get_now(&self, key: &str) -> Result<Option<Object>> {
        let path = self.path(key)?;
        let Some(meta) = self.meta_of(key, &path)? else {
            return Ok(None);
        };
        match std::fs::read(&path) {
            Ok(data) => Ok(Some(Object { data, meta })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(err(e)),
        }
    }

    fn head_now(&self, key: &str) -> Result<Option<ObjectMeta>> {
        let path = self.path(key)?;
        self.meta_of(key, &path)
    }

    /// Copies file to file, never holding the object in memory.
    fn copy_now(&self, from: &str, to: &str) -> Result<ObjectMeta> {
        let (src, dst) = (self.path(from)?, self.path(to)?);
        let meta = self
            .meta_of(from, &src)?
            .ok_or_else(|| GatewayError::NotFound(from.into()))?;
        let mut source = match std::fs::File::open(&src) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(GatewayError::NotFound(from.into()))
            }
            Err(e) => return Err(err(e)),
        };
        let mut scratch = self.scratch(&dst)?;
        std::io::copy(&mut source, &mut scratch.file).map_err(err)?;
        self.put_metadata(to, &meta.metadata)?;
        Ok(object_meta(&scratch.commit(&dst)?, meta.metadata))
    }

    fn delete_now(&self, key: &str) -> Result<()> {
        let path = self.path(key)?;
        for p in [path, self.meta_path(key)] {
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(err(e)),
            }
        }
        Ok(())
    }

    fn list_now(&self, prefix: &str) -> Result<Vec<(String, ObjectMeta)>> {
        // Walk from the deepest directory the prefix names.
        let dir_part = prefix.rsplit_once('/').map_or("", |(d, _)| d);
        let start = if dir_part.is_empty() {
            self.root.clone()
        } else {
            self.path(dir_part)?
        };
        let mut out = Vec::new();
        let mut stack = vec![start];
        while let Some(dir) = stack.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(err(e)),
            };
            for entry in entries {
                let entry = entry.map_err(err)?;
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if name.starts_with(TEMP_PREFIX) || (dir == self.root && name == PRIVATE_DIR) {
                    continue;
                }
                let path = entry.path();
                let ft = entry.file_type().map_err(err)?;
                if ft.is_dir() {
                    stack.push(path);
                } else if ft.is_file() {
                    let rel = path.strip_prefix(&self.root).map_err(err)?;
                    let key = rel
                        .components()
                        .map(|c| c.as_os_str().to_string_lossy())
                        .collect::<Vec<_>>()
                        .join("/");
                    if key.starts_with(prefix) {
                        if let Some(meta) = self.meta_of(&key, &path)? {
                            out.push((key, meta));
                        }
                    }
                }
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replaced_file_is_whole_keeps_its_permissions_and_leaves_nothing_beside_it() {
        use std::os::unix::fs::PermissionsExt as _;
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("new/folder/settings.toml");
        replace_file(&path, b"first").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        replace_file(&path, b"second, longer").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second, longer");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["settings.toml"]);
        // A folder in the way fails the write, and no temporary file is left.
        let blocked = tmp.path().join("blocked");
        std::fs::create_dir(&blocked).unwrap();
        replace_file(&blocked, b"x").unwrap_err();
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 2);
    }

    #[test]
    fn scratch_files_get_names_of_their_own_and_pass_over_one_left_behind() {
        use std::os::unix::fs::PermissionsExt as _;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("AS2/tmp");
        // Threads at once, in a folder not made yet: every file is new, none is shared.
        let made: Vec<PathBuf> = std::thread::scope(|s| {
            let hands: Vec<_> = (0..8)
                .map(|_| s.spawn(|| new_scratch_file(&dir, "t-", 0o600).unwrap().1))
                .collect();
            hands.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let distinct: std::collections::BTreeSet<_> = made.iter().collect();
        assert_eq!(distinct.len(), 8);
        for p in &made {
            let name = p.file_name().unwrap().to_string_lossy();
            assert!(name.starts_with(".mftg-tmp-t-"), "{name}");
            let mode = std::fs::metadata(p).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // The next names, as an earlier process of the same id would have left them after a
        // crash: they are passed over, not opened (nor truncated).
        let probe = new_scratch_file(&dir, "t-", 0o644).unwrap().1;
        let name = probe.file_name().unwrap().to_string_lossy().to_string();
        let (stem, n) = name.rsplit_once('-').unwrap();
        let n = u64::from_str_radix(n, 16).unwrap();
        let left: Vec<PathBuf> = (n + 1..n + 4)
            .map(|k| dir.join(format!("{stem}-{k:x}")))
            .collect();
        for p in &left {
            std::fs::write(p, b"left by a crash").unwrap();
        }
        let next = new_scratch_file(&dir, "t-", 0o644).unwrap().1;
        assert!(!left.contains(&next), "{next:?}");
        for p in &left {
            assert_eq!(std::fs::read(p).unwrap(), b"left by a crash");
        }
    }

    #[test]
    fn folders_made_level_by_level_and_at_once_by_several() {
        let tmp = tempfile::tempdir().unwrap();
        let deep = tmp.path().join("a/b/c/d");
        make_folder(&deep).unwrap();
        assert!(deep.is_dir());
        make_folder(&deep).unwrap();
        // Eight threads making the same new folders at once all succeed.
        let deeper = tmp.path().join("a/x/y/z");
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| make_folder(&deeper).unwrap());
            }
        });
        assert!(deeper.is_dir());
        // A file where a folder should be is an error, not a folder.
        std::fs::write(tmp.path().join("a/file"), b"x").unwrap();
        assert!(make_folder(&tmp.path().join("a/file/sub")).is_err());
        assert!(make_folder(&tmp.path().join("a/file")).is_err());
    }

    #[tokio::test]
    async fn written_and_read_in_parts() {
        let tmp = tempfile::tempdir().unwrap();
        let s = DirStore::new(tmp.path()).unwrap();
        let key = "AS2/raw-message/A/B/outbox/m1/m1.msg";
        let data: Vec<u8> = (0..3 * PART + 17).map(|i| (i % 251) as u8).collect();
        let mut md = BTreeMap::new();
        md.insert("partner".to_string(), "B".to_string());
        // Nothing is under the key while it is written, nor after a writer is dropped.
        let mut w = s.writer(key, md.clone()).await.unwrap();
        w.write(&data[..PART + 5]).await.unwrap();
        assert!(s.head(key).await.unwrap().is_none());
        drop(w);
        assert!(s.head(key).await.unwrap().is_none());
        assert_eq!(
            s.clean_scratch().unwrap(),
            0,
            "the dropped writer's file is gone"
        );
        let mut w = s.writer(key, md.clone()).await.unwrap();
        for piece in data.chunks(100_000) {
            w.write(piece).await.unwrap();
        }
        let meta = w.finish().await.unwrap();
        assert_eq!((meta.size, &meta.metadata), (data.len() as u64, &md));
        assert_eq!(s.get(key).await.unwrap().unwrap().data, data);
        let (meta, mut r) = s.reader(key).await.unwrap().unwrap();
        assert_eq!(meta.size, data.len() as u64);
        let mut parts = Vec::new();
        while let Some(p) = r.next().await.unwrap() {
            assert!(p.len() <= PART);
            parts.push(p);
        }
        assert_eq!(parts.len(), 4);
        assert_eq!(parts.concat(), data);
        assert!(s.reader("AS2/nothing").await.unwrap().is_none());
        assert!(s.writer("../x", BTreeMap::new()).await.is_err());
        // A copy goes file to file, metadata and all.
        let c = s.copy(key, None, "AS2/copy/m1.msg").await.unwrap();
        assert_eq!((c.size, c.metadata), (data.len() as u64, md));
        assert_eq!(s.get("AS2/copy/m1.msg").await.unwrap().unwrap().data, data);
        assert!(matches!(
            s.copy("AS2/nothing", None, "AS2/x").await,
            Err(GatewayError::NotFound(_))
        ));
        assert!(files_under_tmp(&s).is_empty());
    }

    #[tokio::test]
    async fn a_small_object_written_in_parts_makes_its_file_only_when_finished() {
        let tmp = tempfile::tempdir().unwrap();
        let s = DirStore::new(tmp.path()).unwrap();
        let key = "AS2/files/A/B/inbox/f1/small.edi";
        let mut w = s.writer(key, BTreeMap::new()).await.unwrap();
        w.write(b"ISA*00*").await.unwrap();
        w.write(b"~IEA*1~").await.unwrap();
        assert!(files_under_tmp(&s).is_empty(), "no file before finish");
        drop(w);
        assert!(s.head(key).await.unwrap().is_none());
        let mut w = s.writer(key, BTreeMap::new()).await.unwrap();
        w.write(b"ISA*00*").await.unwrap();
        w.write(b"~IEA*1~").await.unwrap();
        let meta = w.finish().await.unwrap();
        assert_eq!(meta.size, 14);
        assert_eq!(s.get(key).await.unwrap().unwrap().data, b"ISA*00*~IEA*1~");
        assert!(files_under_tmp(&s).is_empty());
        // Where the scratch file cannot be made, finish says so and nothing is under the key.
        let scratch = s.root().join(gateway::layout::TMP.trim_end_matches('/'));
        std::fs::remove_dir_all(&scratch).unwrap();
        std::fs::write(&scratch, b"not a folder").unwrap();
        let mut w = s
            .writer("AS2/files/A/B/inbox/f2/x.edi", BTreeMap::new())
            .await
            .unwrap();
        w.write(b"data").await.unwrap();
        assert!(matches!(w.finish().await, Err(GatewayError::Port { .. })));
        assert!(s
            .head("AS2/files/A/B/inbox/f2/x.edi")
            .await
            .unwrap()
            .is_none());
    }

    fn files_under_tmp(s: &DirStore) -> Vec<std::path::PathBuf> {
        std::fs::read_dir(s.root().join(gateway::layout::TMP))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn put_get_copy_delete_list() {
        let tmp = tempfile::tempdir().unwrap();
        let s = DirStore::new(tmp.path()).unwrap();
        let m = s
            .put(
                "AS2/files/A/B/inbox/f1/ä b.edi",
                b"data".to_vec(),
                BTreeMap::new(),
            )
            .await
            .unwrap();
        assert_eq!(m.size, 4);
        let mut md = BTreeMap::new();
        md.insert("partner".to_string(), "B".to_string());
        s.put("AS2/send/A/B/x.edi", b"x".to_vec(), md.clone())
            .await
            .unwrap();
        assert_eq!(
            s.head("AS2/send/A/B/x.edi")
                .await
                .unwrap()
                .unwrap()
                .metadata,
            md
        );
        let c = s
            .copy("AS2/send/A/B/x.edi", None, "AS2/duplicate/A/B/d/x.edi")
            .await
            .unwrap();
        assert_eq!(c.metadata, md);
        s.delete("AS2/send/A/B/x.edi", None).await.unwrap();
        s.delete("AS2/send/A/B/x.edi", None).await.unwrap();
        assert!(s.get("AS2/send/A/B/x.edi").await.unwrap().is_none());
        let keys: Vec<_> = s
            .list("AS2/")
            .await
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(
            keys,
            vec![
                "AS2/duplicate/A/B/d/x.edi",
                "AS2/files/A/B/inbox/f1/ä b.edi"
            ]
        );
        assert_eq!(s.list("AS2/files/A/B/in").await.unwrap().len(), 1);
        assert!(s.list("AS2/nothing/").await.unwrap().is_empty());
        for bad in ["../x", "/etc/passwd", "a/../../b", "", "a/", ".mftg/db"] {
            assert!(s.put(bad, vec![], BTreeMap::new()).await.is_err(), "{bad}");
        }
        // A rewrite changes the etag: a new upload of the same name is a new version.
        let e1 = s
            .put("k", b"1".to_vec(), BTreeMap::new())
            .await
            .unwrap()
            .etag;
        std::thread::sleep(std::time::Duration::from_millis(5));
        let e2 = s
            .put("k", b"22".to_vec(), BTreeMap::new())
            .await
            .unwrap()
            .etag;
        assert_ne!(e1, e2);
    }
}
