//! A finished step's outputs as a run holds them: shared (the history, the
//! graph runner's views and the step's end hold one copy) and compact. A
//! B-tree map keeps eleven slots per node, so a shell step's three outputs
//! cost ≈ 630 bytes; a sorted slice costs what the entries do. A
//! 10,000-step run keeps every step's outputs for its whole life.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

/// Name → value, sorted by name, each name once.
#[derive(Clone, PartialEq, Default)]
pub struct Outputs(Arc<[(Box<str>, Value)]>);

impl Outputs {
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0
            .binary_search_by(|(k, _)| k.as_ref().cmp(name))
            .ok()
            .map(|i| &self.0[i].1)
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(k, v)| (k.as_ref(), v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_ref())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A map of its own (for an event, or to change).
    pub fn to_map(&self) -> BTreeMap<String, Value> {
        self.iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }
}

impl From<BTreeMap<String, Value>> for Outputs {
    /// A map's entries are sorted and unique already.
    fn from(map: BTreeMap<String, Value>) -> Outputs {
        Outputs(
            map.into_iter()
                .map(|(k, v)| (k.into_boxed_str(), v))
                .collect(),
        )
    }
}

impl<const N: usize> From<[(String, Value); N]> for Outputs {
    fn from(entries: [(String, Value); N]) -> Outputs {
        Outputs::from(BTreeMap::from(entries))
    }
}

impl std::fmt::Debug for Outputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl serde::Serialize for Outputs {
    /// As the map it was made from.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_and_writes_as_the_map_it_was_made_from() {
        let map = BTreeMap::from([
            ("stdout".to_string(), json!("hi")),
            ("exit_code".to_string(), json!(0)),
            ("stderr".to_string(), json!("")),
        ]);
        let outputs = Outputs::from(map.clone());
        assert_eq!(outputs.get("stdout"), Some(&json!("hi")));
        assert_eq!(outputs.get("exit_code"), Some(&json!(0)));
        assert!(outputs.get("nothing").is_none());
        assert!(!outputs.contains_key("std"));
        assert_eq!(outputs.len(), 3);
        assert_eq!(outputs.to_map(), map);
        assert_eq!(
            serde_json::to_value(&outputs).unwrap(),
            serde_json::to_value(&map).unwrap()
        );
        assert_eq!(format!("{outputs:?}"), format!("{map:?}"));
        assert!(Outputs::default().is_empty());
    }
}
