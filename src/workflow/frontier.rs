//! Which steps of one graph may start. Each step counts the needs it still
//! waits for; a step that settles releases the steps that need it. Starting
//! and settling a step cost as much as its own needs and dependents, so a
//! graph of n steps is scheduled in O(n + edges) instead of being walked
//! again on every completion (a 10,000-step chain would be quadratic).
//! Plain workflows (`executor::run_graph`) and swarms (`swarm.rs`) use it
//! alike.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::spec::Step;

pub struct Frontier {
    /// For each step, the steps that need it (once per mention).
    dependents: Vec<Vec<usize>>,
    /// For each step, how many of its needs have not settled.
    waiting: Vec<usize>,
    /// Steps whose needs have all settled and that are not taken yet, in
    /// declaration order (the order a user reads them in).
    ready: BTreeSet<usize>,
}

impl Frontier {
    /// Every step waits for all its needs; the ones with none are ready.
    pub fn new(steps: &[Step]) -> Frontier {
        let index: HashMap<String, usize> = steps
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.clone(), i))
            .collect();
        let mut dependents = vec![Vec::new(); steps.len()];
        let mut waiting = vec![0; steps.len()];
        for (i, step) in steps.iter().enumerate() {
            for need in &step.needs {
                waiting[i] += 1;
                // A need that names no step here is never released.
                if let Some(&n) = index.get(need) {
                    dependents[n].push(i);
                }
            }
        }
        let ready = (0..steps.len()).filter(|&i| waiting[i] == 0).collect();
        Frontier {
            dependents,
            waiting,
            ready,
        }
    }

    /// A step added at run time (a follow-up): it needs nothing and no
    /// declared step needs it, so it is ready at once. Returns its index.
    pub fn add_ready(&mut self) -> usize {
        let i = self.waiting.len();
        self.dependents.push(Vec::new());
        self.waiting.push(0);
        self.ready.insert(i);
        i
    }

    /// A step added at run time that waits for `unsettled` (indices of
    /// steps not settled yet; the needs that settled are not counted).
    /// Returns its index.
    pub fn add_waiting(&mut self, unsettled: &[usize]) -> usize {
        let i = self.waiting.len();
        self.dependents.push(Vec::new());
        self.waiting.push(unsettled.len());
        for &n in unsettled {
            self.dependents[n].push(i);
        }
        if unsettled.is_empty() {
            self.ready.insert(i);
        }
        i
    }

    /// Step `i` may start again (a re-opened follow-up, which waits for
    /// nothing).
    pub fn make_ready(&mut self, i: usize) {
        if self.waiting.get(i) == Some(&0) {
            self.ready.insert(i);
        }
    }

    /// The first ready step, taken.
    pub fn take_ready(&mut self) -> Option<usize> {
        self.ready.pop_first()
    }

    /// Step `i` settled (succeeded, failed, skipped or cancelled): the steps
    /// that need it wait for one need fewer. Call once per settling.
    pub fn settled(&mut self, i: usize) {
        for &d in &self.dependents[i] {
            self.waiting[d] = self.waiting[d].saturating_sub(1);
            if self.waiting[d] == 0 {
                self.ready.insert(d);
            }
        }
    }

    /// Counts again after steps were reopened (a live retry): `is_settled`
    /// says which steps have settled, `is_pending` which may start.
    pub fn recount<S>(
        &mut self,
        steps: &[Step],
        states: &BTreeMap<String, S>,
        is_settled: impl Fn(&S) -> bool,
        is_pending: impl Fn(&S) -> bool,
    ) {
        // Steps added at run time keep their place: no declared step
        // waits for them, and they wait for none.
        self.ready.retain(|&i| i >= steps.len());
        for (i, step) in steps.iter().enumerate() {
            self.waiting[i] = step
                .needs
                .iter()
                .filter(|n| !states.get(n.as_str()).is_some_and(&is_settled))
                .count();
            if self.waiting[i] == 0 && states.get(&step.id).is_some_and(&is_pending) {
                self.ready.insert(i);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{ModeRegistry, Workflow, load_workflow_str};
    use proptest::prelude::*;

    /// A workflow of shell steps s0..sn where step i needs the steps in
    /// `needs[i]` (all earlier ones, so it is acyclic).
    fn graph(needs: &[Vec<usize>]) -> Workflow {
        let mut yaml = String::from("version: 1\nkind: workflow\nid: g\nname: G\nsteps:\n");
        for (i, n) in needs.iter().enumerate() {
            yaml.push_str(&format!("  s{i}:\n    type: shell\n    run: \"true\"\n"));
            if !n.is_empty() {
                let list: Vec<String> = n.iter().map(|j| format!("s{j}")).collect();
                yaml.push_str(&format!("    needs: [{}]\n", list.join(", ")));
            }
        }
        let modes = ModeRegistry::builtin().unwrap();
        load_workflow_str(std::path::Path::new("g.yaml"), &yaml, &modes).unwrap()
    }

    fn dag() -> impl Strategy<Value = Vec<Vec<usize>>> {
        (1usize..40).prop_flat_map(|n| {
            (0..n)
                .map(|i| {
                    if i == 0 {
                        Just(Vec::new()).boxed()
                    } else {
                        proptest::collection::btree_set(0..i, 0..4)
                            .prop_map(|s| s.into_iter().collect())
                            .boxed()
                    }
                })
                .collect::<Vec<_>>()
        })
    }

    proptest! {
        /// Settled in any order the frontier allows, every step is taken
        /// exactly once and only after all its needs settled.
        #[test]
        fn every_step_is_taken_once_after_its_needs(needs in dag(), picks in proptest::collection::vec(any::<usize>(), 40)) {
            let wf = graph(&needs);
            let mut f = Frontier::new(&wf.steps);
            let mut taken: Vec<usize> = Vec::new();
            let mut running: Vec<usize> = Vec::new();
            let mut settled = vec![false; needs.len()];
            let mut pick = picks.into_iter().cycle();
            loop {
                while let Some(i) = f.take_ready() {
                    prop_assert!(needs[i].iter().all(|&n| settled[n]), "s{} taken before its needs", i);
                    prop_assert!(!taken.contains(&i), "s{} taken twice", i);
                    taken.push(i);
                    running.push(i);
                }
                if running.is_empty() {
                    break;
                }
                let i = running.remove(pick.next().unwrap_or(0) % running.len());
                settled[i] = true;
                f.settled(i);
            }
            prop_assert_eq!(taken.len(), needs.len());
        }
    }

    #[test]
    fn a_recount_after_a_reopen_makes_ready_what_may_run_again() {
        let wf = graph(&[vec![], vec![0], vec![1]]);
        let mut f = Frontier::new(&wf.steps);
        for _ in 0..3 {
            let i = f.take_ready().unwrap();
            f.settled(i);
        }
        assert_eq!(f.take_ready(), None);
        // s1 and s2 reopened; s0 stays settled.
        let states: BTreeMap<String, bool> = [("s0", true), ("s1", false), ("s2", false)]
            .map(|(k, v)| (k.to_string(), v))
            .into();
        f.recount(&wf.steps, &states, |s| *s, |s| !*s);
        assert_eq!(f.take_ready(), Some(1));
        assert_eq!(f.take_ready(), None);
        f.settled(1);
        assert_eq!(f.take_ready(), Some(2));
    }
}
