//! The walk over a parsed query. sqlparser's derived `Visitor` reaches every
//! node of the tree (subqueries in FROM, in expressions, in CTEs, set
//! operations, joins, window specs); each hook below admits only the node kinds
//! it knows to be reads of allowed data and refuses everything else, so a
//! construct nobody thought of is refused rather than let through.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, FunctionArguments, InTarget, ObjectName, ObjectNamePart, Query, Select, SetExpr,
    TableFactor, Visit, Visitor,
};

use super::{is_allowed_function, Refused};

/// Walks `query`; returns the allowed relations it reads.
pub(super) fn check_query(query: &Query, allowed: &[&str]) -> Result<Vec<String>, Refused> {
    let mut walker = Walker {
        allowed,
        frames: Vec::new(),
        used: BTreeSet::new(),
    };
    match query.visit(&mut walker) {
        ControlFlow::Break(refused) => Err(refused),
        ControlFlow::Continue(()) => Ok(walker.used.into_iter().collect()),
    }
}

/// The CTEs of one `WITH`. A CTE is visible to the CTEs after it and to the
/// query's body, never to itself or to those before it: in
/// `WITH a AS (SELECT * FROM audit_log), audit_log AS (…)` the first
/// `audit_log` is the real table, and must be checked as one.
struct Frame {
    owner: *const Query,
    names: Vec<String>,
    queries: Vec<*const Query>,
    /// How many of `names` are in scope at the current point of the walk.
    visible: usize,
}

struct Walker<'a> {
    allowed: &'a [&'a str],
    frames: Vec<Frame>,
    used: BTreeSet<String>,
}

fn refuse(reason: impl Into<String>) -> ControlFlow<Refused> {
    ControlFlow::Break(Refused(reason.into()))
}

/// An identifier as DuckDB matches it (case-insensitively). Non-ASCII names
/// stay as they are and so never equal an allowed name (look-alikes fail).
fn normalise(value: &str) -> String {
    value.to_ascii_lowercase()
}

impl Walker<'_> {
    fn is_cte_in_scope(&self, name: &str) -> bool {
        self.frames
            .iter()
            .any(|f| f.names[..f.visible].iter().any(|n| n == name))
    }

    fn allowed_list(&self) -> String {
        self.allowed.join(", ")
    }
}

impl Visitor for Walker<'_> {
    type Break = Refused;

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<Refused> {
        let ptr = query as *const Query;
        if let Some(top) = self.frames.last_mut() {
            if let Some(i) = top.queries.iter().position(|q| *q == ptr) {
                top.visible = i;
            }
        }
        if !query.locks.is_empty() {
            return refuse("row locks (FOR UPDATE / FOR SHARE) are not allowed");
        }
        if query.for_clause.is_some()
            || query.settings.is_some()
            || query.format_clause.is_some()
            || !query.pipe_operators.is_empty()
        {
            return refuse(
                "FOR, SETTINGS, FORMAT and pipe clauses are not DuckDB queries and are not allowed",
            );
        }
        check_body(&query.body)?;
        if let Some(with) = &query.with {
            if with.recursive {
                return refuse(
                    "WITH RECURSIVE is not allowed: a recursive CTE can run without end",
                );
            }
            let mut names = Vec::with_capacity(with.cte_tables.len());
            let mut queries = Vec::with_capacity(with.cte_tables.len());
            for cte in &with.cte_tables {
                if cte.from.is_some() {
                    return refuse("CTE … FROM is not allowed");
                }
                names.push(normalise(&cte.alias.name.value));
                queries.push(&*cte.query as *const Query);
            }
            self.frames.push(Frame {
                owner: ptr,
                names,
                queries,
                visible: 0,
            });
        }
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, query: &Query) -> ControlFlow<Refused> {
        let ptr = query as *const Query;
        if query.with.is_some() {
            let frame = self.frames.pop();
            debug_assert!(frame.is_some_and(|f| f.owner == ptr));
            // The body comes after the CTEs; all of them were in scope there.
        }
        if let Some(top) = self.frames.last_mut() {
            if let Some(i) = top.queries.iter().position(|q| *q == ptr) {
                top.visible = i + 1;
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<Refused> {
        if select.into.is_some() {
            return refuse("SELECT … INTO writes a table and is not allowed");
        }
        if !select.lateral_views.is_empty()
            || select.prewhere.is_some()
            || !select.connect_by.is_empty()
            || !select.cluster_by.is_empty()
            || !select.distribute_by.is_empty()
            || !select.sort_by.is_empty()
            || select.top.is_some()
            || select.value_table_mode.is_some()
            || select.select_modifiers.is_some()
            || !select.optimizer_hints.is_empty()
        {
            return refuse(
                "this SELECT uses a clause of another SQL dialect; write plain DuckDB SQL",
            );
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<Refused> {
        match factor {
            TableFactor::Table {
                name,
                args,
                with_hints,
                version,
                with_ordinality,
                partitions,
                json_path,
                index_directives,
                inheritance,
                alias: _,
                sample: _,
            } => {
                if args.is_some() {
                    return refuse(format!(
                        "table functions are not allowed ({name}(…)); read from {}",
                        self.allowed_list()
                    ));
                }
                if !with_hints.is_empty()
                    || version.is_some()
                    || *with_ordinality
                    || !partitions.is_empty()
                    || json_path.is_some()
                    || !index_directives.is_empty()
                    || inheritance.is_some()
                {
                    return refuse(format!(
                        "table modifiers (hints, time travel, partitions) are not allowed on {name}"
                    ));
                }
                ControlFlow::Continue(())
            }
            TableFactor::Derived { .. }
            | TableFactor::NestedJoin { .. }
            | TableFactor::Pivot { .. }
            | TableFactor::Unpivot { .. } => ControlFlow::Continue(()),
            TableFactor::UNNEST { .. } => {
                refuse("UNNEST in FROM is a table function and is not allowed")
            }
            other => refuse(format!(
                "table functions are not allowed ({}); read from {}",
                cut(&other.to_string(), 60),
                self.allowed_list()
            )),
        }
    }

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<Refused> {
        let parts = &relation.0;
        let [ObjectNamePart::Identifier(ident)] = parts.as_slice() else {
            return refuse(format!(
                "name relations without a schema or catalog: {relation} is not allowed; use one of {}",
                self.allowed_list()
            ));
        };
        // `FROM 'x.csv'` is DuckDB's file reader, whatever the text says.
        if ident.quote_style == Some('\'') {
            return refuse(format!("reading a file ({relation}) is not allowed"));
        }
        let name = normalise(&ident.value);
        if self.is_cte_in_scope(&name) {
            return ControlFlow::Continue(());
        }
        if self.allowed.contains(&name.as_str()) {
            self.used.insert(name);
            return ControlFlow::Continue(());
        }
        refuse(format!(
            "relation {relation} is not allowed; the query may read only {} (and its own CTEs)",
            self.allowed_list()
        ))
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<Refused> {
        match expr {
            Expr::Function(f) => {
                let [ObjectNamePart::Identifier(ident)] = f.name.0.as_slice() else {
                    return refuse(format!(
                        "function {} is not allowed: call functions by their plain name",
                        f.name
                    ));
                };
                let name = normalise(&ident.value);
                if !is_allowed_function(&name) {
                    return refuse(format!(
                        "function {} is not on the allowlist of scalar, aggregate and window functions",
                        f.name
                    ));
                }
                if !matches!(f.parameters, FunctionArguments::None) {
                    return refuse(format!(
                        "parametric function calls ({}) are not allowed",
                        f.name
                    ));
                }
                ControlFlow::Continue(())
            }
            Expr::In { target, .. } => match target {
                InTarget::List(_) | InTarget::Subquery(_) => ControlFlow::Continue(()),
                InTarget::Unnest(_) | InTarget::Table { .. } => {
                    refuse("IN UNNEST(…) and IN <table> are not allowed; write IN (SELECT …)")
                }
            },
            Expr::Identifier(_)
            | Expr::CompoundIdentifier(_)
            | Expr::CompoundFieldAccess { .. }
            | Expr::IsFalse(_)
            | Expr::IsNotFalse(_)
            | Expr::IsTrue(_)
            | Expr::IsNotTrue(_)
            | Expr::IsNull(_)
            | Expr::IsNotNull(_)
            | Expr::IsUnknown(_)
            | Expr::IsNotUnknown(_)
            | Expr::IsDistinctFrom(..)
            | Expr::IsNotDistinctFrom(..)
            | Expr::Between { .. }
            | Expr::BinaryOp { .. }
            | Expr::Like { .. }
            | Expr::ILike { .. }
            | Expr::SimilarTo { .. }
            | Expr::AnyOp { .. }
            | Expr::AllOp { .. }
            | Expr::UnaryOp { .. }
            | Expr::Cast { .. }
            | Expr::AtTimeZone { .. }
            | Expr::Extract { .. }
            | Expr::Ceil { .. }
            | Expr::Floor { .. }
            | Expr::Position { .. }
            | Expr::Substring { .. }
            | Expr::Trim { .. }
            | Expr::Overlay { .. }
            | Expr::Collate { .. }
            | Expr::Nested(_)
            | Expr::Value(_)
            | Expr::TypedString(_)
            | Expr::Case { .. }
            | Expr::Exists { .. }
            | Expr::Subquery(_)
            | Expr::GroupingSets(_)
            | Expr::Cube(_)
            | Expr::Rollup(_)
            | Expr::Tuple(_)
            | Expr::Struct { .. }
            | Expr::Named { .. }
            | Expr::Dictionary(_)
            | Expr::Map(_)
            | Expr::Array(_)
            | Expr::Interval(_)
            | Expr::Wildcard(_)
            | Expr::QualifiedWildcard(..)
            | Expr::Lambda(_) => ControlFlow::Continue(()),
            other => refuse(format!(
                "this expression is not allowed: {}",
                cut(&other.to_string(), 80)
            )),
        }
    }
}

/// What a query's body may be: SELECTs, VALUES, nested queries and set
/// operations over them. `INSERT`/`UPDATE`/`DELETE`/`MERGE` in a (CTE) body
/// are writes; `TABLE x` names a relation the walk would not see.
fn check_body(body: &SetExpr) -> ControlFlow<Refused> {
    match body {
        SetExpr::Select(_) | SetExpr::Query(_) | SetExpr::Values(_) => ControlFlow::Continue(()),
        SetExpr::SetOperation { left, right, .. } => {
            check_body(left)?;
            check_body(right)
        }
        SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_) | SetExpr::Merge(_) => {
            refuse("writes (INSERT, UPDATE, DELETE, MERGE) are not allowed, not even inside a CTE")
        }
        SetExpr::Table(_) => refuse("TABLE x is not allowed; write SELECT * FROM x"),
    }
}

fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max).collect();
        out.push('…');
        out
    }
}
