//! CSV formula injection (OWASP "CSV Injection"): a spreadsheet runs a cell
//! that starts with `=`, `+`, `-` or `@` (and some with a leading tab or CR)
//! as a formula, so a producer's or user's string like
//! `=HYPERLINK("http://evil.example", "Click")` would act in an admin's
//! spreadsheet. Such a text cell gets a leading `'`, which spreadsheets show
//! as text and hide.

/// True when a text cell needs the leading `'` (the CSV writer writes it
/// before the cell). A plain number (`-5`, `+1.5e3`) is a value, not a
/// formula, and is kept as is so numeric columns stay numbers.
#[inline]
pub(crate) fn needs_prefix(cell: &str) -> bool {
    matches!(
        cell.as_bytes().first(),
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r')
    ) && !is_plain_number(cell)
}

fn is_plain_number(cell: &str) -> bool {
    cell.bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'))
        && cell.parse::<f64>().is_ok_and(f64::is_finite)
}

#[cfg(test)]
pub(crate) mod tests {
    /// The cell as the CSV export writes it.
    pub(crate) fn neutralise(cell: &str) -> String {
        if super::needs_prefix(cell) {
            format!("'{cell}")
        } else {
            cell.to_string()
        }
    }

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
            assert_eq!(neutralise(cell), want, "{cell:?}");
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
            assert_eq!(neutralise(cell), cell, "{cell:?}");
        }
    }
}
