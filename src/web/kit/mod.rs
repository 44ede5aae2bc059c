//! The page kit: the pieces every list page is made of (ARCHITECTURE "Pages
//! and the page kit"; docs/pages.md shows how to add a page).
//!
//! - [`params`]: parameter parsers and the time window (422s naming the parameter);
//! - [`links`]: every link derived from a page's typed query struct, and chips;
//! - [`cards`]: KPI cards with previous-window deltas;
//! - [`facets`]: facet selects a page lists once;
//! - [`table`]: sort, sort links, pager;
//! - [`page`]: the `PageCtx` extractor that renders a page or its blocks.
//!
//! Their markup is in `templates/partials/` (cards, pager, facet select,
//! chips); data plumbing is in `repo::sql`, streamed exports in `export`.

pub mod cards;
pub mod facets;
pub mod links;
pub mod page;
pub mod params;
pub mod table;

pub use cards::{Delta, KpiCard};
pub use facets::FacetField;
pub use links::{chips, form_values, Chip, Qs};
pub use page::PageCtx;
pub use params::{Window, WindowQuery, WindowRules};
pub use table::{sort_links, Column, Pager, Sort, SortQuery};

/// `query(conn, arg)` on its own connection when there is an `arg`: the
/// regions a page loads only on a whole-page request.
pub async fn run_some<A, T>(
    state: &crate::app::AppState,
    arg: Option<A>,
    query: fn(&duckdb::Connection, &A) -> anyhow::Result<T>,
) -> crate::error::AppResult<Option<T>>
where
    A: Send + 'static,
    T: Send + 'static,
{
    Ok(match arg {
        Some(a) => Some(state.db.run(move |c| query(c, &a)).await?),
        None => None,
    })
}
