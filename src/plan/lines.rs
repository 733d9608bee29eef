//! The lines planner (being built).
