//! Types that several layers share and that belong to none of them: the
//! storage layer (`repo`) stores them, `auth`, `ingest` and `web` produce or
//! read them. Nothing here depends on another module of the crate.

pub mod pricing;
pub mod role;
pub mod transcript;

pub use role::Role;
