//! kiln image
