//! `needs = ["prepare"]`: a job that runs after other jobs of the file have passed. Checked once
//! every job is known: each name is a job of the file, no job needs itself, and no jobs need
//! each other in a circle (which would wait forever).

use std::ops::Range;

use toml::Spanned;

use super::diagnostic::{nearest, ConfigError};
use super::At;

/// One job's `needs` as written, with where each name stands in the file.
pub(super) type WrittenNeeds = Vec<Spanned<String>>;

/// Checks the `needs` of every job (`written[i]` belongs to the i-th of `names`).
pub(super) fn check(names: &[String], written: &[WrittenNeeds], at: &At<'_>) -> Result<(), ConfigError> {
    for (job, needs) in names.iter().zip(written) {
        for need in needs {
            let name = need.get_ref();
            if name == job {
                return Err(at(need.span(), format!("job `{job}` needs itself"))
                    .with_help("`needs` lists other jobs that must pass before this one runs"));
            }
            if !names.contains(name) {
                let help = match nearest(name, names) {
                    Some(best) => format!("did you mean `{best}`?"),
                    None => format!("jobs: {}", names.join(", ")),
                };
                return Err(at(
                    need.span(),
                    format!("job `{job}` needs `{name}`, which is not a job here"),
                )
                .with_help(help));
            }
        }
    }
    let index = |name: &str| names.iter().position(|n| n == name);
    let edges: Vec<Vec<usize>> = written
        .iter()
        .map(|needs| needs.iter().filter_map(|n| index(n.get_ref())).collect())
        .collect();
    if let Some(circle) = find_circle(&edges) {
        let first = circle[0];
        let span: Range<usize> = written[first]
            .iter()
            .find(|n| index(n.get_ref()) == Some(circle[1 % circle.len()]))
            .map_or(0..0, Spanned::span);
        let path: Vec<String> = circle
            .iter()
            .chain(std::iter::once(&first))
            .map(|&i| format!("`{}`", names[i]))
            .collect();
        return Err(at(
            span,
            format!("jobs need each other in a circle: {}", path.join(" needs ")),
        )
        .with_help("remove one of these `needs` so that some job can run first"));
    }
    Ok(())
}

/// The jobs of a circle of needs, if there is one: `edges[i]` lists the jobs `i` needs.
fn find_circle(edges: &[Vec<usize>]) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    fn visit(node: usize, edges: &[Vec<usize>], marks: &mut [Mark], path: &mut Vec<usize>) -> Option<Vec<usize>> {
        marks[node] = Mark::OnPath;
        path.push(node);
        for &next in &edges[node] {
            match marks[next] {
                Mark::OnPath => {
                    let from = path.iter().position(|&n| n == next).unwrap_or(0);
                    return Some(path[from..].to_vec());
                }
                Mark::New => {
                    if let Some(circle) = visit(next, edges, marks, path) {
                        return Some(circle);
                    }
                }
                Mark::Done => {}
            }
        }
        path.pop();
        marks[node] = Mark::Done;
        None
    }
    let mut marks = vec![Mark::New; edges.len()];
    (0..edges.len()).find_map(|start| {
        if marks[start] == Mark::New {
            visit(start, edges, &mut marks, &mut Vec::new())
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn circles_are_found_and_chains_are_not() {
        assert_eq!(find_circle(&[vec![], vec![0], vec![1, 0]]), None);
        assert_eq!(find_circle(&[vec![1], vec![2], vec![0]]), Some(vec![0, 1, 2]));
        assert_eq!(find_circle(&[vec![], vec![2], vec![1]]), Some(vec![1, 2]));
    }
}
