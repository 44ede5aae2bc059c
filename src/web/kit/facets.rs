//! Facet selects: a page lists its facets once, in the order of its form;
//! `templates/partials/facet_select.html` renders them (with the values and
//! counts of the window, or empty while they load).

use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct FacetField {
    /// The label's text.
    pub caption: &'static str,
    /// The select's element id.
    pub id: &'static str,
    /// The query parameter it sets.
    pub name: &'static str,
    /// The "no filter" option's text.
    pub any: &'static str,
    /// The buckets (objects with `count`, and the `key` and `label` fields).
    pub items: serde_json::Value,
    /// The bucket field that is the parameter's value.
    pub key: &'static str,
    /// The bucket field shown.
    pub label: &'static str,
}

impl FacetField {
    /// A facet whose buckets are `{value, count}` (value shown as is).
    pub fn values<T: Serialize>(
        caption: &'static str,
        id: &'static str,
        name: &'static str,
        any: &'static str,
        items: &T,
    ) -> FacetField {
        FacetField {
            caption,
            id,
            name,
            any,
            items: serde_json::to_value(items).unwrap_or_default(),
            key: "value",
            label: "value",
        }
    }

    /// Buckets whose shown label differs from the value (users: email for id).
    pub fn labelled(mut self, key: &'static str, label: &'static str) -> FacetField {
        self.key = key;
        self.label = label;
        self
    }
}
