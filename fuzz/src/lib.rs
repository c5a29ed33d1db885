//! Harnesses for the fuzz targets; see `harness.rs`.
pub mod harness;
