//! kiln lifecycle
