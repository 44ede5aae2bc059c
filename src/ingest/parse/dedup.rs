//! Cross-file response de-duplication (SPEC §3 "response, tokens").

use std::cmp::Ordering;
use std::collections::HashMap;

use crate::model::transcript::Response;

/// One copy of a response: the file it was found in and the response.
pub type ResponseCopy<'a> = (&'a str, &'a Response);

/// Decides, among the responses of ONE user's files, which copy of each
/// `(message_id, request_id)` counts. Returns a mask aligned with `copies`:
/// `true` for the single winning copy of each key, `false` for the others.
///
/// The winner has the larger token total; ties go to the earliest
/// `first_ts_ms` (a copy without a timestamp loses to one with), then to the
/// smallest `session_file` (byte order), then to the earlier position in
/// `copies`. Session token figures include a response only where it wins.
pub fn dedup_across_files(copies: &[ResponseCopy<'_>]) -> Vec<bool> {
    let mut best: HashMap<(&str, &str), usize> = HashMap::with_capacity(copies.len());
    for (i, &(_, r)) in copies.iter().enumerate() {
        let key = (r.message_id.as_str(), r.request_id.as_str());
        match best.get(&key) {
            Some(&j) if !beats(copies[i], copies[j]) => {}
            _ => {
                best.insert(key, i);
            }
        }
    }
    let mut winners = vec![false; copies.len()];
    for &i in best.values() {
        winners[i] = true;
    }
    winners
}

/// Whether copy `a` wins over copy `b` (an earlier copy wins full ties).
fn beats(a: ResponseCopy<'_>, b: ResponseCopy<'_>) -> bool {
    let (file_a, ra) = a;
    let (file_b, rb) = b;
    let order = rb
        .tokens()
        .total()
        .cmp(&ra.tokens().total())
        .then_with(|| earliest(ra.first_ts_ms, rb.first_ts_ms))
        .then_with(|| file_a.cmp(file_b));
    order == Ordering::Less
}

/// Orders timestamps earliest first, a missing one last.
fn earliest(a: Option<i64>, b: Option<i64>) -> Ordering {
    match (a, b) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}
