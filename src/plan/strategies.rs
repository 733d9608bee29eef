//! Planner strategies (being built).
