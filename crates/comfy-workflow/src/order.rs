//! Execution order: a topological sort of the link graph, stable for a
//! given document.

use std::collections::HashMap;

use crate::{NodeId, Workflow};

/// The nodes on a cycle, when the graph has one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("workflow contains a cycle through {}", nodes.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "))]
pub struct Cycle {
    /// The nodes that could not be ordered (on a cycle or after one).
    pub nodes: Vec<NodeId>,
}

impl Workflow {
    /// The nodes in an order where every node comes after the nodes it
    /// links from; links to missing nodes are ignored.
    ///
    /// # Errors
    /// [`Cycle`] with the nodes that could not be ordered.
    pub fn execution_order(&self) -> Result<Vec<NodeId>, Cycle> {
        let n = self.len();
        let pos: HashMap<&str, usize> = self
            .nodes()
            .iter()
            .enumerate()
            .map(|(i, node)| (node.id.as_str(), i))
            .collect();
        let mut indegree = vec![0usize; n];
        let mut users: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, node) in self.nodes().iter().enumerate() {
            for (_, link) in node.links() {
                if let Some(&from) = pos.get(link.node.as_str()) {
                    indegree[i] += 1;
                    users[from].push(i);
                }
            }
        }
        // First in, first out: every node that is ready, in document
        // order, then the nodes they made ready (Python's `graphlib` order,
        // which the Python server's summaries follow).
        let mut ready: std::collections::VecDeque<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
        let mut out = Vec::with_capacity(n);
        while let Some(i) = ready.pop_front() {
            out.push(self.nodes()[i].id.clone());
            for &u in &users[i] {
                indegree[u] -= 1;
                if indegree[u] == 0 {
                    ready.push_back(u);
                }
            }
        }
        if out.len() < n {
            let nodes = (0..n)
                .filter(|&i| indegree[i] > 0)
                .map(|i| self.nodes()[i].id.clone())
                .collect();
            return Err(Cycle { nodes });
        }
        Ok(out)
    }
}
