//! What every export writes the same way, whatever the page.

pub(crate) mod formula;
