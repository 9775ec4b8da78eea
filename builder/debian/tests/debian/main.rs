//! kiln-debian's integration tests, in one binary (one link, one run): hostile and well-formed
//! `.deb`s, a fake mirror, `InRelease` verification, resolution, and the machine's real
//! Debian mirror.

mod deb_fixture;
mod support;

mod base_build;
mod deb_hostile;
mod deb_layer;
mod deb_malformed;
mod fake_mirror;
mod inrelease;
mod mirror_faults;
mod real_mirror;
mod resolve;
