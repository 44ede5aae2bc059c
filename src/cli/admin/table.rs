//! A plain-text table for people: a header row, columns padded to the widest
//! cell, two spaces apart; `-` for a missing value.

use serde_json::Value;

pub(crate) fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.zip(&widths).enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            out.push_str(cell);
            if i + 1 < widths.len() {
                out.extend(std::iter::repeat_n(' ', w - cell.chars().count()));
            }
        }
        out.trim_end().to_string()
    };
    let mut out = line(&mut headers.iter().copied());
    out.push('\n');
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
        out.push('\n');
    }
    out
}

/// A JSON value as a cell: strings as they are, numbers and booleans as
/// written, null or missing as `-`; newlines folded so a row stays one line.
pub(crate) fn cell(v: &Value) -> String {
    let s = match v {
        Value::Null => return "-".into(),
        Value::String(s) if s.is_empty() => return "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The first of `keys` that the object has and is not null (Agnes reads
/// `timestamp|ts`, `table_id|name`…).
pub(crate) fn first<'a>(row: &'a Value, keys: &[&str]) -> &'a Value {
    keys.iter()
        .map(|k| &row[*k])
        .find(|v| !v.is_null())
        .unwrap_or(&Value::Null)
}

/// `2026-05-14T07:47:58.123456Z` → `2026-05-14 07:47:58` (UTC).
pub(crate) fn time(v: &Value) -> String {
    match v.as_str() {
        Some(s) if s.len() >= 19 => s[..19].replace('T', " "),
        _ => cell(v),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn columns_line_up_and_missing_values_show_a_dash() {
        let rows = vec![
            vec!["a".to_string(), cell(&json!(null)), "x".to_string()],
            vec!["longer".to_string(), cell(&json!(12)), "y".to_string()],
        ];
        assert_eq!(
            render(&["NAME", "N", "Z"], &rows),
            "NAME    N   Z\na       -   x\nlonger  12  y\n"
        );
        assert_eq!(
            time(&json!("2026-05-14T07:47:58.123456Z")),
            "2026-05-14 07:47:58"
        );
        assert_eq!(
            first(&json!({"ts": "t"}), &["timestamp", "ts"]),
            &json!("t")
        );
    }
}
