//! kiln layer
