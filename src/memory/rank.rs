//! Tokenizing and BM25 scoring. Pure functions over the postings the
//! journal's index returns, so ranking is tested without a database.

use std::collections::BTreeMap;

use crate::journal::MemoryPostings;

/// Longest term kept, in characters; longer runs are cut (an index key
/// must stay small, and no real word is that long).
const MAX_TERM_CHARS: usize = 48;

/// BM25 term-frequency saturation.
const K1: f64 = 1.2;
/// BM25 length normalisation.
const B: f64 = 0.75;

/// Lowercase runs of alphanumeric characters, in order, repeats kept.
pub fn tokenize(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = 0;
    for c in text.chars() {
        if c.is_alphanumeric() {
            if chars < MAX_TERM_CHARS {
                current.extend(c.to_lowercase());
                chars += 1;
            }
        } else if !current.is_empty() {
            out.push(std::mem::take(&mut current));
            chars = 0;
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// An entry's index terms with their counts: its text and its tags (tags
/// are part of what an entry is about, so they rank like text).
pub fn entry_terms(text: &str, tags: &[String]) -> Vec<(String, u32)> {
    let mut counts: BTreeMap<String, u32> = BTreeMap::new();
    let tag_tokens = tags.iter().flat_map(|t| tokenize(t));
    for term in tokenize(text).into_iter().chain(tag_tokens) {
        let n = counts.entry(term).or_insert(0);
        *n = n.saturating_add(1);
    }
    counts.into_iter().collect()
}

/// The distinct terms of a query, in first-seen order.
pub fn query_terms(query: &str) -> Vec<String> {
    let mut seen = Vec::new();
    for t in tokenize(query) {
        if !seen.contains(&t) {
            seen.push(t);
        }
    }
    seen
}

/// BM25 scores of every entry holding at least one query term, best first
/// (ties by namespace, then key, so results are stable).
pub fn bm25(p: &MemoryPostings) -> Vec<((String, String), f64)> {
    if p.entries == 0 {
        return Vec::new();
    }
    let n = p.entries as f64;
    let avg_len = (p.total_len as f64 / n).max(1.0);
    let mut scores: BTreeMap<(String, String), f64> = BTreeMap::new();
    for (_, postings) in &p.postings {
        let df = postings.len() as f64;
        if df == 0.0 {
            continue;
        }
        // The "+1" form of IDF stays positive for terms in most entries.
        let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
        for post in postings {
            let tf = f64::from(post.count);
            let norm = 1.0 - B + B * f64::from(post.len) / avg_len;
            let s = idf * tf * (K1 + 1.0) / (tf + K1 * norm);
            *scores
                .entry((post.namespace.clone(), post.key.clone()))
                .or_insert(0.0) += s;
        }
    }
    let mut ranked: Vec<_> = scores.into_iter().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    ranked
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::MemoryPosting;

    #[test]
    fn tokens_are_lowercase_alphanumeric_runs() {
        assert_eq!(
            tokenize("The JWT-token store: SQLite (v3)!  Ünïcode ok_2"),
            vec![
                "the",
                "jwt",
                "token",
                "store",
                "sqlite",
                "v3",
                "ünïcode",
                "ok",
                "2"
            ]
        );
        assert!(tokenize(" -- ").is_empty());
        let long = "x".repeat(100);
        assert_eq!(tokenize(&long)[0].len(), MAX_TERM_CHARS);
    }

    #[test]
    fn terms_count_text_and_tags() {
        let terms = entry_terms("db db cache", &["DB".into(), "auth-flow".into()]);
        assert_eq!(
            terms,
            vec![
                ("auth".to_string(), 1),
                ("cache".into(), 1),
                ("db".into(), 3),
                ("flow".into(), 1)
            ]
        );
        assert_eq!(query_terms("db DB cache db"), vec!["db", "cache"]);
    }

    fn posting(key: &str, count: u32, len: u32) -> MemoryPosting {
        MemoryPosting {
            namespace: "global".into(),
            key: key.into(),
            count,
            len,
        }
    }

    #[test]
    fn rarer_terms_and_denser_entries_rank_higher() {
        // Three entries; "sqlite" is in one, "store" in all three.
        let p = MemoryPostings {
            entries: 3,
            total_len: 30,
            postings: vec![
                ("sqlite".into(), vec![posting("a", 1, 10)]),
                (
                    "store".into(),
                    vec![posting("a", 1, 10), posting("b", 1, 5), posting("c", 1, 15)],
                ),
            ],
        };
        let ranked = bm25(&p);
        let keys: Vec<&str> = ranked.iter().map(|r| r.0.1.as_str()).collect();
        // `a` has the rare term; of the rest the shorter entry ranks first.
        assert_eq!(keys, vec!["a", "b", "c"]);
        assert!(ranked[0].1 > ranked[1].1 && ranked[1].1 > ranked[2].1);
        assert!(ranked.iter().all(|r| r.1 > 0.0));
    }

    #[test]
    fn repeats_saturate() {
        let p = MemoryPostings {
            entries: 2,
            total_len: 20,
            postings: vec![(
                "cache".into(),
                vec![posting("many", 8, 10), posting("once", 1, 10)],
            )],
        };
        let ranked = bm25(&p);
        assert_eq!(ranked[0].0.1, "many");
        // BM25 caps a term's weight at (k1 + 1) × idf however often it repeats.
        assert!(ranked[0].1 < ranked[1].1 * (K1 + 1.0));
    }

    #[test]
    fn nothing_indexed_ranks_nothing() {
        assert!(bm25(&MemoryPostings::default()).is_empty());
    }
}
