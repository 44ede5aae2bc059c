//! CSV formula injection (OWASP "CSV Injection"): a spreadsheet runs a cell
//! that starts with `=`, `+`, `-` or `@` (and some with a leading tab or CR)
//! as a formula, so a producer's or user's string like
//! `=HYPERLINK("http://evil.example", "Click")` would act in an admin's
//! spreadsheet. Such a text cell gets a leading `'`, which spreadsheets show
//! as text and hide.

use std::borrow::Cow;

const TRIGGERS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// A cell made safe: borrowed unless it needed the quote. Writers that take
/// bytes (`csv::Writer::write_record`) take it as is.
#[derive(Debug, PartialEq)]
pub(crate) struct Neutral<'a>(pub(crate) Cow<'a, str>);

impl AsRef<[u8]> for Neutral<'_> {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// The cell as text a spreadsheet will not evaluate. A plain number
/// (`-5`, `+1.5e3`) is a value, not a formula, and is kept as is so numeric
/// columns stay numbers.
pub(crate) fn neutralise(cell: &str) -> Neutral<'_> {
    Neutral(if cell.starts_with(TRIGGERS) && !is_plain_number(cell) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    })
}

fn is_plain_number(cell: &str) -> bool {
    cell.bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'))
        && cell.parse::<f64>().is_ok_and(f64::is_finite)
}

#[cfg(test)]
mod tests {
    use super::neutralise;

    #[test]
    fn cells_a_spreadsheet_would_evaluate_get_a_leading_quote() {
        for (cell, want) in [
            (
                r#"=HYPERLINK("http://x","y")"#,
                r#"'=HYPERLINK("http://x","y")"#,
            ),
            ("+1+1", "'+1+1"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
            ("\t=1", "'\t=1"),
            ("\r=1", "'\r=1"),
            ("-", "'-"),
            ("-inf", "'-inf"),
            ("-NaN", "'-NaN"),
            ("+1e5+cmd", "'+1e5+cmd"),
        ] {
            assert_eq!(neutralise(cell).0, want, "{cell:?}");
        }
    }

    #[test]
    fn ordinary_text_and_numbers_are_left_alone() {
        for cell in [
            "",
            "table.read",
            "a=b",
            "{\"note\":\"=1\"}",
            "2026-05-14T07:00:00.000000Z",
            "42",
            "-5",
            "+1.5",
            "-1.5e3",
            " =1",
        ] {
            assert_eq!(neutralise(cell).0, cell, "{cell:?}");
        }
    }
}
