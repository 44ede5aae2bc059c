//! Sortable, paginated tables: the sort parsed against a page's columns, the
//! header links that flip it, and the pager
//! (`templates/partials/pager.html`).

use serde::{Deserialize, Serialize};

use super::links::Qs;
use super::params::{int_param, present};
use crate::error::{AppError, AppResult};

/// The table parameters every page shares, as sent.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct SortQuery {
    pub sort: Option<String>,
    pub dir: Option<String>,
    pub page: Option<String>,
}

/// A column a table can be sorted by.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub key: &'static str,
    pub label: &'static str,
    /// Its first click sorts descending (times, durations, counts).
    pub desc_first: bool,
    /// It has one direction only (a keyset-paged timeline, newest first).
    pub fixed: bool,
}

impl Column {
    pub const fn asc(key: &'static str, label: &'static str) -> Column {
        Column {
            key,
            label,
            desc_first: false,
            fixed: false,
        }
    }

    pub const fn desc(key: &'static str, label: &'static str) -> Column {
        Column {
            key,
            label,
            desc_first: true,
            fixed: false,
        }
    }

    /// Descending only.
    pub const fn fixed(key: &'static str, label: &'static str) -> Column {
        Column {
            key,
            label,
            desc_first: true,
            fixed: true,
        }
    }
}

/// The table's current order and page.
#[derive(Debug, Clone)]
pub struct Sort {
    /// The column's key.
    pub name: &'static str,
    pub descending: bool,
    /// 1-based.
    pub page: usize,
    /// True when this is the table's default order (no `sort` in links).
    pub is_default: bool,
}

/// Page numbers beyond this are refused (a 422).
pub const MAX_PAGE: i64 = 100_000;

impl Sort {
    /// `sort`, `dir` and `page` against `columns`; the first column is the
    /// default order.
    pub fn parse(q: &SortQuery, columns: &[Column]) -> AppResult<Sort> {
        let default = columns[0];
        let name = present(&q.sort).map(str::trim).unwrap_or(default.key);
        let col = columns.iter().find(|c| c.key == name).ok_or_else(|| {
            let keys: Vec<&str> = columns.iter().map(|c| c.key).collect();
            AppError::unprocessable(format!(
                "sort: must be one of {}, got {name:?}",
                keys.join(", ")
            ))
        })?;
        let descending = match present(&q.dir).map(str::trim) {
            _ if col.fixed => true,
            None => col.desc_first,
            Some("asc") => false,
            Some("desc") => true,
            Some(other) => {
                return Err(AppError::unprocessable(format!(
                    "dir: must be asc or desc, got {other:?}"
                )))
            }
        };
        let page = int_param("page", &q.page, 1, MAX_PAGE)?.unwrap_or(1) as usize;
        Ok(Sort {
            name: col.key,
            descending,
            page,
            is_default: col.key == default.key && descending == default.desc_first,
        })
    }

    pub fn dir(&self) -> &'static str {
        if self.descending {
            "desc"
        } else {
            "asc"
        }
    }

    /// `sort` and `dir` for links, empty for the default order.
    pub fn qs(&self) -> Qs {
        if self.is_default {
            Qs::default()
        } else {
            Qs::pairs([("sort", self.name), ("dir", self.dir())])
        }
    }

    /// [`Sort::qs`] plus the page when it is not the first: this very view.
    pub fn qs_with_page(&self) -> Qs {
        match self.page {
            1 => self.qs(),
            n => self.qs().set("page", &n.to_string()),
        }
    }

    pub fn offset(&self, per_page: usize) -> usize {
        (self.page - 1) * per_page
    }
}

#[derive(Debug, Serialize)]
pub struct SortLink {
    pub key: &'static str,
    pub label: &'static str,
    pub href: String,
    /// "ascending", "descending" or "none" (aria-sort).
    pub state: &'static str,
}

/// The header links: clicking the current column flips it, another starts at
/// its first direction; a fixed default column resets the sort.
pub fn sort_links(path: &str, filters: &Qs, columns: &[Column], sort: &Sort) -> Vec<SortLink> {
    columns
        .iter()
        .enumerate()
        .map(|(i, col)| {
            let current = sort.name == col.key;
            let next_dir = match (current, sort.descending) {
                (true, true) => "asc",
                (true, false) => "desc",
                (false, _) if col.desc_first => "desc",
                _ => "asc",
            };
            let sq = if i == 0 && col.fixed {
                Qs::default()
            } else {
                Qs::pairs([("sort", col.key), ("dir", next_dir)])
            };
            SortLink {
                key: col.key,
                label: col.label,
                href: filters.join(&sq).url(path),
                state: match (current, sort.descending) {
                    (false, _) => "none",
                    (true, true) => "descending",
                    (true, false) => "ascending",
                },
            }
        })
        .collect()
}

/// Offset pages of a sorted table.
#[derive(Debug, Serialize)]
pub struct Pager {
    pub page: usize,
    pub pages: usize,
    pub prev: Option<String>,
    pub next: Option<String>,
}

impl Pager {
    /// The pager of `total` rows, `per_page` a page; links are this view
    /// (`path`, filters and sort) with another page.
    pub fn new(path: &str, view: &Qs, sort: &Sort, total: i64, per_page: usize) -> Pager {
        let pages = (total.max(0) as usize).div_ceil(per_page).max(1);
        let base = view.join(&Qs::pairs([("sort", sort.name), ("dir", sort.dir())]));
        let href = |n: usize| base.set("page", &n.to_string()).url(path);
        Pager {
            page: sort.page,
            pages,
            prev: (sort.page > 1).then(|| href(sort.page - 1)),
            next: (sort.page < pages).then(|| href(sort.page + 1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLS: [Column; 3] = [
        Column::fixed("time", "Time"),
        Column::asc("action", "Action"),
        Column::desc("duration", "Duration"),
    ];

    fn q(sort: &str, dir: &str) -> SortQuery {
        SortQuery {
            sort: Some(sort.into()),
            dir: Some(dir.into()),
            page: None,
        }
    }

    #[test]
    fn sorts_parse_against_the_columns_and_unknown_ones_are_named() {
        let s = Sort::parse(&SortQuery::default(), &COLS).unwrap();
        assert!(s.is_default && s.descending && s.qs().is_empty());
        let s = Sort::parse(&q("duration", ""), &COLS).unwrap();
        assert!(s.descending && !s.is_default);
        let e = Sort::parse(&q("nope", ""), &COLS).unwrap_err();
        assert!(e.to_string().contains("time, action, duration"), "{e}");
        assert!(Sort::parse(&q("action", "up"), &COLS).is_err());
    }

    #[test]
    fn header_links_flip_the_current_column_and_the_pager_keeps_the_view() {
        let s = Sort::parse(&q("action", "asc"), &COLS).unwrap();
        let f = Qs::pairs([("q", "x")]);
        let links = sort_links("/p", &f, &COLS, &s);
        assert_eq!(links[0].href, "/p?q=x");
        assert_eq!(links[1].href, "/p?q=x&sort=action&dir=desc");
        assert_eq!(links[1].state, "ascending");
        let p = Pager::new("/p", &f, &s, 120, 50);
        assert_eq!(p.pages, 3);
        assert_eq!(p.next.as_deref(), Some("/p?q=x&sort=action&dir=asc&page=2"));
        assert!(p.prev.is_none());
    }
}
