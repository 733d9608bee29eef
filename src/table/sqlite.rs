//! SQLite table (being built).
