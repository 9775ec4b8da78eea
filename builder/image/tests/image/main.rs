//! kiln-image against real parts: OCI layouts and archives read back by kiln and by
//! `skopeo`, the validator against tampered layouts, and push/pull against Debian's
//! `docker-registry` started per test on 127.0.0.1.

#[path = "../common/mod.rs"]
mod common;
#[path = "../../../registry/tests/common/fake.rs"]
mod fake;

mod archive;
mod faults;
mod index;
mod layout;
mod push_faults;
mod remote;
mod validate;
