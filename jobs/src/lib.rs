//! Example jobs for batchfan.
