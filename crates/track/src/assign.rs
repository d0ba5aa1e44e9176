//! Minimum-cost assignment of rows to columns: the Hungarian method with potentials, on
//! shortest augmenting paths (O(n²m)), in a fixed order of operations: the answer depends
//! only on the matrix. Used by ByteTrack's association and by the tracking evaluator's matching.

/// Every row gets its own column when `rows <= cols` (else every column its own row), with
/// the least total cost. `costs[r * cols + c]`, all finite (a non-finite cost is never
/// chosen while a finite alternative exists: see [`most_pairs`]). Returns each row's column.
#[must_use]
pub fn minimum_cost(costs: &[f64], rows: usize, cols: usize) -> Vec<Option<usize>> {
    debug_assert_eq!(costs.len(), rows * cols);
    if rows > cols {
        // Solve the transpose: every column gets a row.
        let t: Vec<f64> = (0..cols * rows)
            .map(|i| costs[(i % rows) * cols + i / rows])
            .collect();
        let by_col = minimum_cost(&t, cols, rows);
        let mut out = vec![None; rows];
        for (c, r) in by_col.into_iter().enumerate() {
            if let Some(r) = r {
                out[r] = Some(c);
            }
        }
        return out;
    }
    let (n, m) = (rows, cols);
    let cost = |r: usize, c: usize| costs[r * cols + c];
    // 1-based rows and columns; column 0 is the root of each search.
    let mut u = vec![0.0f64; n + 1];
    let mut v = vec![0.0f64; m + 1];
    let mut owner = vec![0usize; m + 1];
    let mut way = vec![0usize; m + 1];
    for row in 1..=n {
        owner[0] = row;
        let mut j0 = 0usize;
        let mut minv = vec![f64::INFINITY; m + 1];
        let mut used = vec![false; m + 1];
        loop {
            used[j0] = true;
            let i0 = owner[j0];
            let mut delta = f64::INFINITY;
            let mut j1 = 0usize;
            for j in 1..=m {
                if used[j] {
                    continue;
                }
                let reduced = cost(i0 - 1, j - 1) - u[i0] - v[j];
                if reduced < minv[j] {
                    minv[j] = reduced;
                    way[j] = j0;
                }
                if minv[j] < delta {
                    delta = minv[j];
                    j1 = j;
                }
            }
            if j1 == 0 {
                // Only non-finite costs left: nothing to augment along.
                break;
            }
            for j in 0..=m {
                if used[j] {
                    u[owner[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
            if owner[j0] == 0 {
                break;
            }
        }
        if owner[j0] != 0 {
            continue;
        }
        while j0 != 0 {
            let j1 = way[j0];
            owner[j0] = owner[j1];
            j0 = j1;
        }
    }
    let mut out = vec![None; n];
    for (j, &r) in owner.iter().enumerate().skip(1) {
        if r != 0 {
            out[r - 1] = Some(j - 1);
        }
    }
    out
}

/// As many (row, column) pairs as possible among those whose cost is finite, and of those the
/// cheapest (a non-finite cost marks a pair that may not be made). Sorted by row.
#[must_use]
pub fn most_pairs(costs: &[f64], rows: usize, cols: usize) -> Vec<(usize, usize)> {
    // Any pair that may not be made costs more than every allowed pair together, so the
    // solver takes one only where no allowed pair is left to take.
    let allowed: f64 = costs
        .iter()
        .filter(|c| c.is_finite())
        .map(|c| c.abs())
        .sum();
    let forbidden = 2.0 * allowed + 1.0;
    let filled: Vec<f64> = costs
        .iter()
        .map(|&c| if c.is_finite() { c } else { forbidden })
        .collect();
    pairs(&minimum_cost(&filled, rows, cols), costs, cols)
}

/// Pairs whose cost is at most `limit`, minimising the matched cost plus `limit / 2` for every
/// row and every column left alone (the `cost_limit` of Jonker–Volgenant's `lapjv`, as
/// ByteTrack uses it). Sorted by row.
#[must_use]
pub fn pairs_within(costs: &[f64], rows: usize, cols: usize, limit: f64) -> Vec<(usize, usize)> {
    let allowed = |c: f64| c.is_finite() && c <= limit;
    // Rows and columns with no pair within the limit are left alone whatever the rest does:
    // solve only for the others.
    let live_rows: Vec<usize> = (0..rows)
        .filter(|&r| (0..cols).any(|c| allowed(costs[r * cols + c])))
        .collect();
    let live_cols: Vec<usize> = (0..cols)
        .filter(|&c| (0..rows).any(|r| allowed(costs[r * cols + c])))
        .collect();
    if live_rows.len() < rows || live_cols.len() < cols {
        let sub: Vec<f64> = live_rows
            .iter()
            .flat_map(|&r| live_cols.iter().map(move |&c| costs[r * cols + c]))
            .collect();
        return pairs_within(&sub, live_rows.len(), live_cols.len(), limit)
            .into_iter()
            .map(|(r, c)| (live_rows[r], live_cols[c]))
            .collect();
    }
    // (rows + cols)² with the real block top left, "left alone" at limit/2 beside and below
    // it, and dummy-to-dummy free.
    let size = rows + cols;
    let half = limit / 2.0;
    let over = limit * 4.0 + 1.0;
    let mut ext = vec![0.0f64; size * size];
    for r in 0..size {
        for c in 0..size {
            ext[r * size + c] = match (r < rows, c < cols) {
                (true, true) => {
                    let x = costs[r * cols + c];
                    if x.is_finite() && x <= limit { x } else { over }
                }
                (true, false) | (false, true) => half,
                (false, false) => 0.0,
            };
        }
    }
    let chosen = minimum_cost(&ext, size, size);
    let real: Vec<Option<usize>> = chosen
        .into_iter()
        .take(rows)
        .map(|c| c.filter(|&c| c < cols))
        .collect();
    pairs(&real, costs, cols)
        .into_iter()
        .filter(|&(r, c)| costs[r * cols + c] <= limit)
        .collect()
}

fn pairs(by_row: &[Option<usize>], costs: &[f64], cols: usize) -> Vec<(usize, usize)> {
    by_row
        .iter()
        .enumerate()
        .filter_map(|(r, c)| c.map(|c| (r, c)))
        .filter(|&(r, c)| costs[r * cols + c].is_finite())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The least total over every way of giving each row its own column (rows ≤ cols ≤ 6).
    fn brute(costs: &[f64], rows: usize, cols: usize) -> f64 {
        fn go(costs: &[f64], rows: usize, cols: usize, r: usize, used: &mut [bool]) -> f64 {
            if r == rows {
                return 0.0;
            }
            let mut best = f64::INFINITY;
            for c in 0..cols {
                if !used[c] {
                    used[c] = true;
                    best = best.min(costs[r * cols + c] + go(costs, rows, cols, r + 1, used));
                    used[c] = false;
                }
            }
            best
        }
        go(costs, rows, cols, 0, &mut vec![false; cols])
    }

    #[test]
    fn small_cases() {
        // The greedy choice (0,0)=1 forces (1,1)=10; the best is 2 + 2.
        let c = [1.0, 2.0, 2.0, 10.0];
        assert_eq!(minimum_cost(&c, 2, 2), [Some(1), Some(0)]);
        // More rows than columns: the cheapest column owner wins.
        let c = [5.0, 1.0, 3.0];
        assert_eq!(minimum_cost(&c, 3, 1), [None, Some(0), None]);
        assert!(minimum_cost(&[], 0, 3).is_empty());
        assert_eq!(minimum_cost(&[], 2, 0), [None, None]);
        // Forbidden pairs: as many pairs as possible first, then the cheapest.
        let nan = f64::NAN;
        let c = [0.1, 0.2, nan, 0.9];
        assert_eq!(most_pairs(&c, 2, 2), [(0, 0), (1, 1)]);
        let c = [0.1, nan, nan, nan];
        assert_eq!(most_pairs(&c, 2, 2), [(0, 0)]);
        // A limit: a pair dearer than it is never made; pairs beat leaving both alone.
        let c = [0.5, 0.95, 0.9, 0.4];
        assert_eq!(pairs_within(&c, 2, 2, 0.8), [(0, 0), (1, 1)]);
        let c = [0.9, 0.2, 0.3, 0.85];
        assert_eq!(pairs_within(&c, 2, 2, 0.8), [(0, 1), (1, 0)]);
        assert_eq!(pairs_within(&[0.81], 1, 1, 0.8), []);
    }

    /// Every partial matching of a small matrix: (pairs, their total cost).
    fn matchings(costs: &[f64], rows: usize, cols: usize) -> Vec<(Vec<(usize, usize)>, f64)> {
        fn go(
            costs: &[f64],
            rows: usize,
            cols: usize,
            r: usize,
            used: &mut Vec<bool>,
            now: &mut Vec<(usize, usize)>,
            out: &mut Vec<(Vec<(usize, usize)>, f64)>,
        ) {
            if r == rows {
                let total = now.iter().map(|&(r, c)| costs[r * cols + c]).sum();
                out.push((now.clone(), total));
                return;
            }
            go(costs, rows, cols, r + 1, used, now, out);
            for c in 0..cols {
                if !used[c] {
                    used[c] = true;
                    now.push((r, c));
                    go(costs, rows, cols, r + 1, used, now, out);
                    now.pop();
                    used[c] = false;
                }
            }
        }
        let mut out = Vec::new();
        go(
            costs,
            rows,
            cols,
            0,
            &mut vec![false; cols],
            &mut Vec::new(),
            &mut out,
        );
        out
    }

    fn cells(rows: usize, cols: usize, seed: &[f64], holes: &[bool]) -> Vec<f64> {
        (0..rows * cols)
            .map(|i| if holes[i] { f64::NAN } else { seed[i] })
            .collect()
    }

    proptest! {
        /// `most_pairs` makes as many pairs as any matching of allowed pairs can, and of those
        /// the cheapest; never a forbidden pair.
        #[test]
        fn most_pairs_is_largest_then_cheapest(
            rows in 0usize..5, cols in 0usize..5,
            seed in prop::collection::vec(0.0f64..1.0, 25),
            holes in prop::collection::vec(prop::bool::weighted(0.4), 25),
        ) {
            let costs = cells(rows, cols, &seed, &holes);
            let got = most_pairs(&costs, rows, cols);
            prop_assert!(got.iter().all(|&(r, c)| costs[r * cols + c].is_finite()));
            let total: f64 = got.iter().map(|&(r, c)| costs[r * cols + c]).sum();
            let allowed: Vec<(usize, f64)> = matchings(&costs, rows, cols)
                .into_iter()
                .filter(|(m, _)| m.iter().all(|&(r, c)| costs[r * cols + c].is_finite()))
                .map(|(m, t)| (m.len(), t))
                .collect();
            let most = allowed.iter().map(|a| a.0).max().unwrap_or(0);
            let best = allowed.iter().filter(|a| a.0 == most).map(|a| a.1).fold(f64::INFINITY, f64::min);
            prop_assert_eq!(got.len(), most);
            prop_assert!(most == 0 || (total - best).abs() < 1e-9, "{total} vs {best}");
        }

        /// `pairs_within` minimises the matched cost plus limit/2 for everything left alone,
        /// over matchings of pairs within the limit, and makes no pair beyond it.
        #[test]
        fn pairs_within_is_optimal_under_its_limit(
            rows in 0usize..5, cols in 0usize..5,
            seed in prop::collection::vec(0.0f64..1.0, 25),
            holes in prop::collection::vec(prop::bool::weighted(0.2), 25),
            limit in 0.1f64..1.0,
        ) {
            let costs = cells(rows, cols, &seed, &holes);
            let objective = |m: &[(usize, usize)], total: f64| {
                total + limit / 2.0 * ((rows - m.len()) + (cols - m.len())) as f64
            };
            let got = pairs_within(&costs, rows, cols, limit);
            prop_assert!(got.iter().all(|&(r, c)| costs[r * cols + c] <= limit));
            let total: f64 = got.iter().map(|&(r, c)| costs[r * cols + c]).sum();
            let best = matchings(&costs, rows, cols)
                .into_iter()
                .filter(|(m, _)| m.iter().all(|&(r, c)| costs[r * cols + c] <= limit))
                .map(|(m, t)| objective(&m, t))
                .fold(f64::INFINITY, f64::min);
            prop_assert!((objective(&got, total) - best).abs() < 1e-9, "{} vs {best}", objective(&got, total));
        }

        /// The assignment is a matching (no column twice), complete on the smaller side, and
        /// as cheap as the best found by trying every one.
        #[test]
        fn optimal_complete_matching(
            rows in 0usize..6, cols in 0usize..6,
            seed in prop::collection::vec(0.0f64..10.0, 36),
        ) {
            let costs: Vec<f64> = seed[..rows * cols].to_vec();
            let got = minimum_cost(&costs, rows, cols);
            prop_assert_eq!(got.len(), rows);
            let cols_used: Vec<usize> = got.iter().flatten().copied().collect();
            let mut dedup = cols_used.clone();
            dedup.sort_unstable();
            dedup.dedup();
            prop_assert_eq!(dedup.len(), cols_used.len());
            prop_assert_eq!(cols_used.len(), rows.min(cols));
            let total: f64 = got.iter().enumerate().filter_map(|(r, c)| c.map(|c| costs[r * cols + c])).sum();
            let best = if rows <= cols {
                brute(&costs, rows, cols)
            } else {
                let t: Vec<f64> = (0..cols * rows).map(|i| costs[(i % rows) * cols + i / rows]).collect();
                brute(&t, cols, rows)
            };
            prop_assert!((total - best).abs() < 1e-9, "{total} vs {best}");
        }
    }
}
