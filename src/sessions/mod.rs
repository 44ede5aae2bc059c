//! Sessions: the transcripts on disk as the Sessions pages and APIs see them.
//! `paths` decides which files may be read at all; `transcript` reads one
//! file line by line into viewer events; `zip` streams a user's files.

pub mod paths;
pub mod transcript;
pub mod zip;
