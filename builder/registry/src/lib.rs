//! kiln registry
