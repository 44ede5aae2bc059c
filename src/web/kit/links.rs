//! Links derived from a page's typed query struct. A page's filters are one
//! `#[derive(Deserialize, Serialize)]` struct of `Option<String>` fields; the
//! form values, every link (load more, sort, pager, KPI card, bucket, chip,
//! export, saved view) and the query string of this very view all come from
//! it here, so a filter added to the struct is carried everywhere.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

/// A query string as ordered (key, value) pairs, blank values left out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Qs(Vec<(String, String)>);

impl Qs {
    /// The non-blank fields of a query struct, in field order (flattened
    /// structs in place).
    pub fn of<T: Serialize>(query: &T) -> Qs {
        // Through the urlencoded serializer, which keeps field order (a JSON
        // map would sort the keys).
        let encoded = serde_urlencoded::to_string(query).unwrap_or_default();
        Qs(form_urlencoded::parse(encoded.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.trim().to_string()))
            .filter(|(_, v)| !v.is_empty())
            .collect())
    }

    /// Pairs given literally (blank values left out).
    pub fn pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Qs {
        Qs(pairs
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
    }

    /// With `key` set to `value` (in its place, or appended); an empty value
    /// removes the key.
    pub fn set(&self, key: &str, value: &str) -> Qs {
        let mut out = Vec::with_capacity(self.0.len() + 1);
        let mut placed = false;
        for (k, v) in &self.0 {
            if k == key {
                if !placed && !value.is_empty() {
                    out.push((k.clone(), value.to_string()));
                }
                placed = true;
            } else {
                out.push((k.clone(), v.clone()));
            }
        }
        if !placed && !value.is_empty() {
            out.push((key.to_string(), value.to_string()));
        }
        Qs(out)
    }

    /// [`Qs::set`] for several keys.
    pub fn set_all(&self, set: &[(&str, &str)]) -> Qs {
        set.iter().fold(self.clone(), |q, (k, v)| q.set(k, v))
    }

    pub fn without(&self, key: &str) -> Qs {
        self.set(key, "")
    }

    /// These pairs followed by the other's.
    pub fn join(&self, other: &Qs) -> Qs {
        let mut out = self.0.clone();
        out.extend(other.0.iter().cloned());
        Qs(out)
    }

    pub fn get(&self, key: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `path?query`, or `path` alone when there is no query.
    pub fn url(&self, path: &str) -> String {
        if self.0.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{self}")
        }
    }

    pub fn into_map(self) -> serde_json::Map<String, Value> {
        self.0
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect()
    }
}

impl std::fmt::Display for Qs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut ser = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.0 {
            ser.append_pair(k, v);
        }
        f.write_str(&ser.finish())
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Every field of a query struct as the form shows it: trimmed, "" when
/// absent, so templates can read any field.
pub fn form_values<T: Serialize>(query: &T) -> BTreeMap<String, String> {
    match serde_json::to_value(query) {
        Ok(Value::Object(map)) => map
            .into_iter()
            .map(|(k, v)| {
                let s = scalar(&v).map(|s| s.trim().to_string()).unwrap_or_default();
                (k, s)
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// A set filter the form has no control for (it came from a shared link, a
/// saved view, a bucket or the side panel), with the address of the page
/// without it.
#[derive(Debug, Serialize)]
pub struct Chip {
    pub key: &'static str,
    pub label: &'static str,
    pub value: String,
    pub remove_href: String,
}

/// The chips of the set keys among `keys` (key, label).
pub fn chips(
    filters: &Qs,
    keys: &[(&'static str, &'static str)],
    path: &str,
    tail: &Qs,
) -> Vec<Chip> {
    keys.iter()
        .filter(|(k, _)| !filters.get(k).is_empty())
        .map(|(key, label)| Chip {
            key,
            label,
            value: filters.get(key).to_string(),
            remove_href: filters.without(key).join(tail).url(path),
        })
        .collect()
}

/// A saved view's stored query as pairs for a link (strings, numbers and
/// booleans; anything else is dropped).
pub fn from_json(query: &Value) -> Qs {
    Qs(query
        .as_object()
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| scalar(v).map(|s| (k.clone(), s)))
                .filter(|(_, v)| !v.trim().is_empty())
                .collect()
        })
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Default)]
    struct Inner {
        since: Option<String>,
    }

    #[derive(Serialize, Default)]
    struct Q {
        #[serde(flatten)]
        inner: Inner,
        a: Option<String>,
        b: Option<String>,
    }

    #[test]
    fn query_strings_drop_empty_values() {
        assert_eq!(
            Qs::pairs([("a", "1"), ("b", ""), ("c", "x y")]).to_string(),
            "a=1&c=x+y"
        );
    }

    #[test]
    fn a_query_struct_gives_its_set_fields_and_set_replaces_in_place() {
        let q = Q {
            inner: Inner {
                since: Some("2026-01-01".into()),
            },
            a: Some(" ".into()),
            b: Some("x&y".into()),
        };
        let qs = Qs::of(&q);
        assert_eq!(qs.to_string(), "since=2026-01-01&b=x%26y");
        assert_eq!(qs.set("since", "2").to_string(), "since=2&b=x%26y");
        assert_eq!(
            qs.set("page", "3").url("/p"),
            "/p?since=2026-01-01&b=x%26y&page=3"
        );
        assert_eq!(qs.without("b").without("since").url("/p"), "/p");
        let f = form_values(&q);
        assert_eq!(f["a"], "");
        assert_eq!(f["since"], "2026-01-01");
    }
}
