//! The inbox's typed query (filters, sort, page), shared by the page and the
//! admin JSON list.

use serde::{Deserialize, Serialize};

use crate::error::AppResult;
use crate::feedback::STATUSES;
use crate::repo::feedback::{Filter, Order};
use crate::web::kit::params::{one_of, text_param};
use crate::web::kit::{Column, Qs, Sort, SortQuery};

/// Reports per page.
pub const PAGE_ROWS: usize = 50;

/// The inbox's columns a list can be sorted by; the first is the default.
pub const COLUMNS: [Column; 3] = [
    Column::desc("age", "Age"),
    Column::asc("status", "Status"),
    Column::desc("duplicates", "Duplicates"),
];

/// The filters, as the URL carries them.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct FeedbackQuery {
    pub status: Option<String>,
    pub tag: Option<String>,
    pub assignee: Option<String>,
    pub reporter: Option<String>,
    pub q: Option<String>,
}

/// The page's whole query.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct ListParams {
    #[serde(flatten)]
    pub filter: FeedbackQuery,
    #[serde(flatten)]
    pub table: SortQuery,
}

pub struct Parsed {
    pub filter: Filter,
    pub sort: Sort,
    pub filters: Qs,
}

impl ListParams {
    pub fn parse(&self) -> AppResult<Parsed> {
        let f = &self.filter;
        let filter = Filter {
            status: one_of("status", &f.status, &STATUSES)?,
            tag: text_param("tag", &f.tag)?.map(|t| t.to_lowercase()),
            assignee: text_param("assignee", &f.assignee)?,
            reporter: text_param("reporter", &f.reporter)?,
            q: text_param("q", &f.q)?,
        };
        Ok(Parsed {
            filter,
            sort: Sort::parse(&self.table, &COLUMNS)?,
            filters: Qs::of(f),
        })
    }
}

impl Parsed {
    pub fn order(&self) -> (Order, bool) {
        let o = match self.sort.name {
            "status" => Order::Status,
            "duplicates" => Order::Duplicates,
            _ => Order::Newest,
        };
        (o, self.sort.descending)
    }
}
