//! The SQLite store: the only module that names rusqlite.
