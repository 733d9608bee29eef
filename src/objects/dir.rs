//! Directory object store (being built).
