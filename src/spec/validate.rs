//! Spec validation (being built).
