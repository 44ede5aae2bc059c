//! The SQL guard of Ask and the internal data source (SPEC §5 "Ask safety", §8).
//!
//! Text that glassbox did not write is parsed with sqlparser (DuckDB dialect) and
//! accepted only when it is exactly one query (SELECT, WITH … SELECT, set
//! operations) whose every relation is one of the names the caller allows or a
//! CTE of the query in scope, that calls no table function, and whose every
//! function is on an allowlist of scalar, aggregate and window functions. A
//! DuckDB release that adds a file reader therefore changes nothing here.
//!
//! What runs is the statement printed back from the checked tree, never the
//! text as sent: comments are gone, and a difference between how sqlparser and
//! DuckDB read quotes, escapes or nested comments cannot smuggle in a name the
//! walk did not see. No HTTP and no database here; execution is in
//! `repo::query_source`.

mod functions;
mod walk;

#[cfg(test)]
pub(crate) mod tests;

use sqlparser::ast::Statement;
use sqlparser::dialect::DuckDbDialect;
use sqlparser::parser::Parser;

pub(crate) use functions::is_allowed_function;

/// Longest SQL text the guard reads (a model's answer or a person's query).
pub const MAX_SQL_CHARS: usize = 100_000;

/// SQL that passed the guard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guarded {
    /// The statement printed back from the checked tree (what must run).
    pub sql: String,
    /// The allowed relations it reads (lower case, sorted, each once).
    pub relations: Vec<String>,
}

/// Why SQL was refused, in words a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// Checks `sql` against the allowlist `allowed` (relation names, lower case).
pub fn check(sql: &str, allowed: &[&str]) -> Result<Guarded, Refused> {
    let text = sql.trim();
    if text.is_empty() {
        return Err(Refused("SQL is empty".into()));
    }
    if text.chars().count() > MAX_SQL_CHARS {
        return Err(Refused(format!(
            "SQL is longer than {MAX_SQL_CHARS} characters"
        )));
    }
    let statements = Parser::parse_sql(&DuckDbDialect {}, text)
        .map_err(|e| Refused(format!("SQL does not parse as a single DuckDB query: {e}")))?;
    let statement = match statements.as_slice() {
        [] => return Err(Refused("SQL is empty".into())),
        [one] => one,
        more => {
            return Err(Refused(format!(
                "exactly one statement is allowed; this SQL has {}",
                more.len()
            )))
        }
    };
    let Statement::Query(query) = statement else {
        return Err(Refused(format!(
            "only a query (SELECT or WITH … SELECT) may run, not {}",
            statement_kind(statement)
        )));
    };
    let relations = walk::check_query(query, allowed)?;
    Ok(Guarded {
        sql: statement.to_string(),
        relations,
    })
}

/// The statement's leading keywords, for the refusal (`INSERT`, `COPY`, …).
fn statement_kind(statement: &Statement) -> String {
    let text = statement.to_string();
    let words: Vec<&str> = text.split_whitespace().take(2).collect();
    let first = words.first().copied().unwrap_or("").to_ascii_uppercase();
    // `CREATE TABLE`, `DROP VIEW`: the second word says what.
    let kind = match first.as_str() {
        "CREATE" | "DROP" | "ALTER" => {
            format!(
                "{first} {}",
                words.get(1).copied().unwrap_or("").to_ascii_uppercase()
            )
        }
        _ => first,
    };
    format!("{} …", kind.trim())
}
