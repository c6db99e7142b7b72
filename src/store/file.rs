//! The database file's identity at its path, so the writer notices when the file it writes to
//! was deleted or replaced (an admin's `rm`, a restore from backup) instead of committing into
//! a file nobody can open any more.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Device and inode of the file at a path: a deleted and recreated file gets a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
}

/// The identity of the file now at `path`; `None` when there is none (or it cannot be read).
fn file_id(path: &Path) -> Option<FileId> {
    std::fs::metadata(path).ok().map(|m| FileId {
        dev: m.dev(),
        ino: m.ino(),
    })
}

/// `path` with SQLite's suffix for a side file (`-wal`, `-shm`).
fn side_file(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// The database file and its WAL side files as one connection opened them.
#[derive(Debug)]
pub(super) struct OpenedFiles {
    main: Option<FileId>,
    sides: Vec<(&'static str, Option<FileId>)>,
}

impl OpenedFiles {
    /// What is at `path` now (call right after opening it in WAL mode).
    pub(super) fn at(path: &Path) -> OpenedFiles {
        OpenedFiles {
            main: file_id(path),
            sides: ["-wal", "-shm"]
                .into_iter()
                .map(|s| (s, file_id(&side_file(path, s))))
                .collect(),
        }
    }

    /// The file at `path` is no longer the one opened (deleted, or another file put there).
    pub(super) fn main_changed(&self, path: &Path) -> bool {
        file_id(path) != self.main
    }

    /// Removes the `-wal` and `-shm` at `path` that are still the old database's: SQLite would
    /// replay that WAL into whatever file is now at the path. Call after closing the old
    /// connection (which cannot checkpoint into a moved file, so leaves its WAL behind).
    pub(super) fn remove_old_side_files(&self, path: &Path) {
        for (suffix, opened) in &self.sides {
            let side = side_file(path, suffix);
            if opened.is_none() || file_id(&side) != *opened {
                continue;
            }
            match std::fs::remove_file(&side) {
                Ok(()) => {
                    tracing::warn!(file = %side.display(), "removed a side file of the old database")
                }
                Err(e) => {
                    tracing::warn!(file = %side.display(), err = %e, "cannot remove a side file of the old database")
                }
            }
        }
    }
}
