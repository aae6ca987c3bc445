//! What the runs browser's "new run" box means: a workflow file followed
//! by `name=value` inputs, or else an objective for a swarm. Told apart by
//! looking at the files (the state, which reads no files, cannot).

use std::collections::BTreeMap;
use std::path::Path;

use crate::protocol::Op;

/// Agent slots of a swarm started from the browser (`lev workflow`'s default).
pub const AGENTS: u32 = 4;

/// The op that starts what `text` names, or why it names nothing that can
/// start. A first word that is a file, or ends in `.yaml`/`.yml`, names a
/// workflow; anything else is an objective.
pub fn op_for(text: &str, cwd: &Path) -> Result<Op, String> {
    let text = text.trim();
    let mut words = text.split_whitespace();
    let Some(first) = words.next() else {
        return Err("nothing to start: give a workflow file or an objective".into());
    };
    let looks_like_file = first.ends_with(".yaml") || first.ends_with(".yml");
    let path = cwd.join(first);
    if !path.is_file() {
        if looks_like_file {
            return Err(format!("no workflow file {first} in {}", cwd.display()));
        }
        return Ok(Op::StartObjective {
            objective: text.to_string(),
            agents: AGENTS,
        });
    }
    let mut inputs = BTreeMap::new();
    for word in words {
        let Some((name, value)) = word.split_once('=').filter(|(n, _)| !n.is_empty()) else {
            return Err(format!(
                "`{word}` is not an input: after the file, give inputs as name=value"
            ));
        };
        inputs.insert(name.to_string(), value.to_string());
    }
    Ok(Op::StartWorkflow {
        file: path.to_string_lossy().into_owned(),
        inputs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_with_inputs_an_objective_and_what_is_neither() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("flow.yaml"), "name: x\n").unwrap();
        let op = op_for("flow.yaml topic=rust n=3", dir.path()).unwrap();
        let Op::StartWorkflow { file, inputs } = op else {
            panic!("{op:?}")
        };
        assert!(file.ends_with("flow.yaml"));
        assert_eq!(inputs.get("topic").map(String::as_str), Some("rust"));
        assert_eq!(inputs.len(), 2);
        assert_eq!(
            op_for("  implement auth system ", dir.path()).unwrap(),
            Op::StartObjective {
                objective: "implement auth system".into(),
                agents: AGENTS,
            }
        );
        let missing = op_for("other.yaml", dir.path()).unwrap_err();
        assert!(missing.contains("no workflow file other.yaml"), "{missing}");
        let bad = op_for("flow.yaml topic", dir.path()).unwrap_err();
        assert!(bad.contains("`topic` is not an input"), "{bad}");
        assert!(op_for("   ", dir.path()).is_err());
    }
}
