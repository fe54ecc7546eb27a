//! Execution order: a topological sort of the link graph, stable for a
//! given document.

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
        let nodes = self.nodes();
        match self.order_positions() {
            Ok(order) => Ok(order.iter().map(|&i| nodes[i].id.clone()).collect()),
            Err(stuck) => Err(Cycle {
                nodes: stuck.iter().map(|&i| nodes[i].id.clone()).collect(),
            }),
        }
    }

    /// [`Workflow::execution_order`] as positions in [`Workflow::nodes`];
    /// the error holds the positions that could not be ordered. Computed
    /// once and kept until the workflow changes.
    pub(crate) fn order_positions(&self) -> Result<&[usize], &[usize]> {
        match self.cached_order(|| self.sort_positions()) {
            Ok(order) => Ok(order),
            Err(stuck) => Err(stuck),
        }
    }

    fn sort_positions(&self) -> Result<Vec<usize>, Vec<usize>> {
        let nodes = self.nodes();
        let n = nodes.len();
        // Edges as (from, to) positions, then a compact adjacency list.
        let mut edges: Vec<(usize, usize)> = Vec::with_capacity(n * 2);
        let mut indegree = vec![0usize; n];
        for (to, node) in nodes.iter().enumerate() {
            for (_, link) in node.links() {
                if let Some(from) = self.position(link.node.as_str()) {
                    indegree[to] += 1;
                    edges.push((from, to));
                }
            }
        }
        let mut start = vec![0usize; n + 1];
        for &(from, _) in &edges {
            start[from + 1] += 1;
        }
        for i in 0..n {
            start[i + 1] += start[i];
        }
        let mut fill = start.clone();
        let mut users = vec![0usize; edges.len()];
        for &(from, to) in &edges {
            users[fill[from]] = to;
            fill[from] += 1;
        }
        // First in, first out: every node that is ready, in document
        // order, then the nodes they made ready (Python's `graphlib` order,
        // which the Python server's summaries follow).
        let mut ready: std::collections::VecDeque<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
        let mut out = Vec::with_capacity(n);
        while let Some(i) = ready.pop_front() {
            out.push(i);
            for &u in &users[start[i]..start[i + 1]] {
                indegree[u] -= 1;
                if indegree[u] == 0 {
                    ready.push_back(u);
                }
            }
        }
        if out.len() < n {
            return Err((0..n).filter(|&i| indegree[i] > 0).collect());
        }
        Ok(out)
    }
}
