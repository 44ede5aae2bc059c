//! One integration binary: real servers on loopback, real DuckDB files.

mod activity;
mod auth;
mod cli;
mod helpers;
mod ops;
mod routes;
mod users;
