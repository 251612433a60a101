//! Cutting one input into the pieces a streaming parser is fed.

/// Splits `data` into pieces at the lengths its first bytes give, for targets that check that
/// a streaming parser's result does not depend on how its input arrives.
pub fn split_points(data: &[u8]) -> (Vec<usize>, &[u8]) {
    let (&n, rest) = match data.split_first() {
        Some(x) => x,
        None => return (Vec::new(), data),
    };
    let n = usize::from(n % 8).min(rest.len());
    let (cuts, body) = rest.split_at(n);
    let mut points: Vec<usize> = cuts.iter().map(|&c| usize::from(c)).collect();
    let mut at = 0;
    for p in &mut points {
        at = (at + *p).min(body.len());
        *p = at;
    }
    (points, body)
}
