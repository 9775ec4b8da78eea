//! kiln-registry against a real registry: Debian's `docker-registry` (distribution 2.8)
//! started per test on 127.0.0.1.

#[path = "../common/mod.rs"]
mod common;

mod auth;
mod bearer;
mod push_pull;
mod tls;
