//! In-process bus (being built).
