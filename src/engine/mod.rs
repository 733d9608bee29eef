//! The local engine (being built).
