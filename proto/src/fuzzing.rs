//! Harnesses the fuzz targets and the corpus-replay tests call.
//!
//! SKELETON: being written.
