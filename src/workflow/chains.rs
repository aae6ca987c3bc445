//! The follow-ups of one step graph while it runs: the steps added at run
//! time (after the declared ones, by index), who spawned each, and which
//! steps still wait for their follow-ups. A step that spawned follow-ups
//! releases the steps that need it only once all of them (and theirs)
//! have settled: `approve` after `security` sees the fixes security's
//! review asked for.

use std::collections::{BTreeMap, HashMap};

use super::followups::Child;
use super::frontier::Frontier;
use crate::protocol::StepKey;
use crate::spec::{Step, Workflow};

#[derive(Default)]
pub struct Chains {
    /// Follow-ups by graph index (after the declared steps; a swarm's
    /// revised plan adds tasks of its own between them).
    children: BTreeMap<usize, Child>,
    /// Each follow-up's parent, by index.
    parent: HashMap<usize, usize>,
    /// Steps whose follow-ups have not all settled, and how many have not.
    open: HashMap<usize, usize>,
}

impl Chains {
    /// The step at graph index `i`, declared or spawned.
    pub fn step<'a>(&'a self, wf: &'a Workflow, i: usize) -> &'a Step {
        match self.children.get(&i) {
            Some(c) => &c.step,
            None => &wf.steps[i],
        }
    }

    /// Every follow-up with its graph index.
    pub fn children_mut(&mut self) -> impl Iterator<Item = (usize, &mut Child)> {
        self.children.iter_mut().map(|(&i, c)| (i, c))
    }

    /// The follow-up at graph index `i`, if it is one.
    pub fn child(&self, i: usize) -> Option<&Child> {
        self.children.get(&i)
    }

    /// The depth and chain root of the step at `i` whose key is `key`: a
    /// declared step is the root of its own chain at depth 0.
    pub fn depth_and_root(&self, i: usize, key: &StepKey) -> (u32, StepKey) {
        match self.child(i) {
            Some(c) => (c.depth, c.root.clone()),
            None => (0, key.clone()),
        }
    }

    /// Adds `children` spawned by the step at `parent`, ready to run;
    /// returns their indices. With none, the parent is released.
    pub fn add(
        &mut self,
        parent: usize,
        children: Vec<Child>,
        frontier: &mut Frontier,
    ) -> Vec<usize> {
        if children.is_empty() {
            self.release(parent, frontier);
            return Vec::new();
        }
        self.open.insert(parent, children.len());
        let mut added = Vec::with_capacity(children.len());
        for child in children {
            let i = frontier.add_ready();
            self.children.insert(i, child);
            self.parent.insert(i, parent);
            added.push(i);
        }
        added
    }

    /// The step at `i` settled with nothing left to wait for: the steps
    /// that need it may go on, and its parent has one follow-up fewer to
    /// wait for (released in turn when that was the last).
    pub fn release(&mut self, mut i: usize, frontier: &mut Frontier) {
        loop {
            frontier.settled(i);
            let Some(&p) = self.parent.get(&i) else {
                return;
            };
            let Some(left) = self.open.get_mut(&p) else {
                return;
            };
            *left = left.saturating_sub(1);
            if *left > 0 {
                return;
            }
            self.open.remove(&p);
            i = p;
        }
    }
}
