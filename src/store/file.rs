//! The database file's identity at its path, so the writer notices when the file it writes to
//! was deleted or replaced (an admin's `rm`, a restore from backup) instead of committing into
//! a file nobody can open any more.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Device and inode of the file at a path: a deleted and recreated file gets a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FileId {
    dev: u64,
    ino: u64,
}

/// The identity of the file now at `path`; `None` when there is none (or it cannot be read).
pub(super) fn file_id(path: &Path) -> Option<FileId> {
    std::fs::metadata(path).ok().map(|m| FileId {
        dev: m.dev(),
        ino: m.ino(),
    })
}

/// `path` with SQLite's suffix for a side file (`-wal`, `-shm`).
pub(super) fn side_file(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// After the main file was deleted, a `-wal` or `-shm` left at the path belongs to the old
/// database; SQLite would replay that WAL into the new file, so remove them first.
pub(super) fn remove_orphaned_side_files(path: &Path) {
    if path.exists() {
        return;
    }
    for suffix in ["-wal", "-shm"] {
        let side = side_file(path, suffix);
        match std::fs::remove_file(&side) {
            Ok(()) => {
                tracing::warn!(file = %side.display(), "removed a side file of the deleted database")
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(file = %side.display(), err = %e, "cannot remove a side file of the deleted database")
            }
        }
    }
}
