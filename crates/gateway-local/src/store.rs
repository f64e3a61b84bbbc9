//! A directory standing in for the bucket: object keys are relative paths, writes are atomic
//! (a temporary file renamed into place), and metadata lives beside the data under `.mftg/meta`.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::time::UNIX_EPOCH;

use gateway::ports::{Object, ObjectMeta, ObjectStore};
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
        let modified = fs_meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .unwrap_or_default();
        let metadata = match std::fs::read(self.meta_path(key)) {
            Ok(b) => serde_json::from_slice(&b).unwrap_or_default(),
            Err(_) => BTreeMap::new(),
        };
        Ok(Some(ObjectMeta {
            size: fs_meta.len(),
            // Size and modification time identify a version of a file well enough to tell a
            // redelivered event from a new upload; a directory has no versions of its own.
            etag: format!("{:x}-{:x}", fs_meta.len(), modified.as_nanos()),
            version: None,
            modified: Millis(i64::try_from(modified.as_millis()).unwrap_or(i64::MAX)),
            metadata,
        }))
    }

    /// Writes `data` as `path` so that no reader ever sees part of it, and it survives a crash
    /// once this returns: written in full to a file under `AS2/tmp/` (not in the folder SFTP
    /// users see), flushed to disk, renamed into place, and the folder's entry flushed too.
    fn write_atomic(&self, path: &Path, data: &[u8]) -> Result<()> {
        use std::io::Write as _;
        let dir = path
            .parent()
            .ok_or_else(|| err("object path has no parent"))?;
        std::fs::create_dir_all(dir).map_err(err)?;
        let scratch = self.root.join(gateway::layout::TMP);
        std::fs::create_dir_all(&scratch).map_err(err)?;
        let tmp = scratch.join(format!("{TEMP_PREFIX}{}", as2::random_hex(6)));
        let private = path
            .strip_prefix(&self.root)
            .ok()
            .and_then(|p| p.to_str())
            .is_some_and(gateway::layout::is_private);
        let written = (|| -> std::io::Result<()> {
            use std::os::unix::fs::OpenOptionsExt as _;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(if private { 0o600 } else { 0o644 })
                .open(&tmp)?;
            f.write_all(data)?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)?;
            std::fs::File::open(dir)?.sync_all()
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written.map_err(err)
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
}

impl DirStore {
    fn put_now(
        &self,
        key: &str,
        data: Vec<u8>,
        metadata: BTreeMap<String, String>,
    ) -> Result<ObjectMeta> {
        let path = self.path(key)?;
        if metadata.is_empty() {
            let _ = std::fs::remove_file(self.meta_path(key));
        } else {
            let m = self.meta_path(key);
            self.write_atomic(&m, &serde_json::to_vec(&metadata).map_err(err)?)?;
        }
        self.write_atomic(&path, &data)?;
        self.meta_of(key, &path)?
            .ok_or_else(|| err(format!("{key} vanished after writing")))
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

    fn copy_now(&self, from: &str, to: &str) -> Result<ObjectMeta> {
        let object = self
            .get_now(from)?
            .ok_or_else(|| GatewayError::NotFound(from.into()))?;
        self.put_now(to, object.data, object.meta.metadata)
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
