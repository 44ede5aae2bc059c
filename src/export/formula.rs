//! Spreadsheet formula injection (OWASP "CSV injection"): a text cell that
//! starts with `=`, `+`, `-`, `@`, a tab or a carriage return is run as a
//! formula by spreadsheet programs. Such cells get a `'` prefix, which the
//! programs show as plain text.

use std::borrow::Cow;

/// The cell as a spreadsheet will read it safely.
pub fn neutralise(cell: &str) -> Cow<'_, str> {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => Cow::Owned(format!("'{cell}")),
        _ => Cow::Borrowed(cell),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_a_spreadsheet_would_run_get_a_quote_and_others_stay() {
        for bad in ["=HYPERLINK(\"x\")", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(neutralise(bad), format!("'{bad}"));
        }
        for ok in ["", "plain", "a=b", " =x", "'=already"] {
            assert_eq!(neutralise(ok), ok);
        }
    }
}
