//! llama-perplexity's text: what it prints on stdout (per-chunk values, the final estimate,
//! the KL-divergence table and report) and its informational lines on stderr, byte for byte,
//! so that scripts reading that text keep working. [`TextReport`] writes a whole run;
//! the functions render one piece each.

use super::{
    KlBaseHeader, KlChunkResult, KlDivergenceResult, Layout, PerplexityOutput, PerplexityProgress, PerplexityResult,
    PerplexityTask,
};
use std::io::Write;

/// The KL-divergence table's header row.
pub const KL_TABLE_HEADER: &str = "\nchunk             PPL               ln(PPL(Q)/PPL(base))          KL Divergence              Δp RMS            Same top p\n";

/// llama-perplexity prints the final KL statistics only from this many scored tokens on.
pub const KL_REPORT_MIN_SCORED: usize = 100;

/// Writes a run's text as llama-perplexity does: `out` gets what it prints on stdout, `err`
/// its informational lines. Write errors are kept and returned by [`TextReport::finish`], so
/// that it can be fed from a progress callback.
pub struct TextReport<O: Write, E: Write> {
    out: O,
    err: E,
    layout: Layout,
    chunks_seen: usize,
    error: Option<std::io::Error>,
}

impl<O: Write, E: Write> TextReport<O, E> {
    /// A report of a run with `layout`.
    pub fn new(out: O, err: E, layout: Layout) -> Self {
        TextReport { out, err, layout, chunks_seen: 0, error: None }
    }

    fn keep(&mut self, r: std::io::Result<()>) {
        if let (Err(e), None) = (r, &self.error) {
            self.error = Some(e);
        }
    }

    /// What llama-perplexity prints before the first chunk; `base` is the KL base file's
    /// header, for [`PerplexityTask::KlDivergence`].
    pub fn start(&mut self, task: &PerplexityTask, base: Option<&KlBaseHeader>) {
        let l = self.layout;
        let r = match (task, base) {
            (PerplexityTask::KlDivergence { .. }, Some(h)) => writeln!(
                self.err,
                "kl_divergence: computing over {} chunks, n_ctx={}, batch_size={}, n_seq={}",
                h.n_chunk, h.n_ctx, l.n_batch, l.n_seq
            )
            .and_then(|()| self.out.write_all(KL_TABLE_HEADER.as_bytes())),
            _ => writeln!(self.err, "perplexity: tokenizing the input .."),
        };
        let r = r.and_then(|()| self.out.flush());
        self.keep(r);
    }

    /// One scored chunk: `[1]12.3456,` or a KL table row.
    pub fn progress(&mut self, p: &PerplexityProgress) {
        self.chunks_seen += 1;
        let l = self.layout;
        let r = match p {
            PerplexityProgress::Chunk(c) => {
                let first = if self.chunks_seen == 1 {
                    writeln!(
                        self.err,
                        "perplexity: calculating perplexity over {} chunks, n_ctx={}, batch_size={}, n_seq={}",
                        c.n_chunk, l.n_ctx, l.n_batch, l.n_seq
                    )
                } else {
                    Ok(())
                };
                first.and_then(|()| write!(self.out, "[{}]{:.4},", c.chunk, c.ppl))
            }
            PerplexityProgress::KlChunk(c) => self.out.write_all(kl_line(c).as_bytes()),
        };
        let r = r.and_then(|()| self.out.flush());
        self.keep(r);
    }

    /// The end of the run: the final estimate (or KL report) and timings.
    ///
    /// # Errors
    /// The first write error of the whole report.
    pub fn finish(mut self, result: &PerplexityOutput) -> std::io::Result<()> {
        let r = self.out.write_all(b"\n").and_then(|()| match result {
            PerplexityOutput::KlDivergence(r) if r.n_scored >= KL_REPORT_MIN_SCORED => {
                self.out.write_all(kl_report(r).as_bytes())
            }
            PerplexityOutput::KlDivergence(_) => Ok(()),
            PerplexityOutput::Perplexity(r) => self.perplexity_end(r),
        });
        let r = r.and_then(|()| self.out.flush());
        self.keep(r);
        self.error.map_or(Ok(()), Err)
    }

    fn perplexity_end(&mut self, r: &PerplexityResult) -> std::io::Result<()> {
        writeln!(
            self.err,
            "perplexity: tokenization took {:.3} ms, {:.2} seconds per pass",
            r.timings.tokenize_ms, r.timings.seconds_per_pass
        )?;
        self.out.write_all(final_estimate(r.ppl, r.ppl_uncertainty).as_bytes())?;
        writeln!(
            self.err,
            "perplexity: {} tokens ({} evaluated, {} scored) in {:.2} s, {:.1} tokens/s",
            r.n_tokens, r.n_tokens_evaluated, r.n_scored, r.timings.total_s, r.timings.tokens_per_s
        )
    }
}

/// `Final estimate: PPL = 12.3456 +/- 0.12345`, as llama-perplexity ends a perplexity run.
pub fn final_estimate(ppl: f64, uncertainty: f64) -> String {
    format!("Final estimate: PPL = {ppl:.4} +/- {uncertainty:.5}\n")
}

/// One row of llama-perplexity's KL-divergence table.
pub fn kl_line(c: &KlChunkResult) -> String {
    let k = &c.running;
    format!(
        "{:4}    {} ± {}    {} ± {}    {} ± {}    {} ± {} %    {} ± {} %\n",
        c.chunk,
        cf(k.ppl.value, 9, 4),
        cf(k.ppl.uncertainty, 9, 4),
        cf(k.ln_ppl_ratio.value, 10, 5),
        cf(k.ln_ppl_ratio.uncertainty, 10, 5),
        cf(k.kld.value, 10, 5),
        cf(k.kld.uncertainty, 10, 5),
        cf(100.0 * k.p_diff_rms.value, 6, 3),
        cf(100.0 * k.p_diff_rms.uncertainty, 6, 3),
        cf(100.0 * k.same_top.value, 6, 3),
        cf(100.0 * k.same_top.uncertainty, 6, 3)
    )
}

/// `%W.Plf` as C's printf writes it (`nan` / `-nan` rather than Rust's `NaN`).
pub(crate) fn cf(v: f64, width: usize, prec: usize) -> String {
    if v.is_nan() {
        let s = if v.is_sign_negative() { "-nan" } else { "nan" };
        format!("{s:>width$}")
    } else {
        format!("{v:width$.prec$}")
    }
}

/// llama-perplexity's final KL-divergence report.
pub fn kl_report(r: &KlDivergenceResult) -> String {
    let p = &r.ppl;
    let k = &r.kld_distribution;
    let d = &r.p_diff_distribution;
    let mut s = String::new();
    s += "====== Perplexity statistics ======\n";
    s += &format!("Mean PPL(Q)                   : {:10.6} ± {:10.6}\n", p.ppl.value, p.ppl.uncertainty);
    s += &format!("Mean PPL(base)                : {:10.6} ± {:10.6}\n", p.ppl_base.value, p.ppl_base.uncertainty);
    s += &format!("Cor(ln(PPL(Q)), ln(PPL(base))): {:6.2}%\n", 100.0 * p.ln_ppl_correlation);
    s += &format!(
        "Mean ln(PPL(Q)/PPL(base))     : {:10.6} ± {:10.6}\n",
        p.ln_ppl_ratio.value, p.ln_ppl_ratio.uncertainty
    );
    s += &format!("Mean PPL(Q)/PPL(base)         : {:10.6} ± {:10.6}\n", p.ppl_ratio.value, p.ppl_ratio.uncertainty);
    s += &format!("Mean PPL(Q)-PPL(base)         : {:10.6} ± {:10.6}\n", p.ppl_diff.value, p.ppl_diff.uncertainty);
    s += "\n====== KL divergence statistics ======\n";
    s += &format!("Mean    KLD: {:10.6} ± {:10.6}\n", r.kld.value, r.kld.uncertainty);
    for (label, v) in [
        ("Maximum KLD", k.max),
        ("99.9%   KLD", k.p99_9),
        ("99.0%   KLD", k.p99),
        ("95.0%   KLD", k.p95),
        ("90.0%   KLD", k.p90),
        ("Median  KLD", k.median),
        ("10.0%   KLD", k.p10),
        (" 5.0%   KLD", k.p5),
        (" 1.0%   KLD", k.p1),
        (" 0.1%   KLD", k.p0_1),
        ("Minimum KLD", k.min),
    ] {
        s += &format!("{label}: {v:10.6}\n");
    }
    s += "\n====== Token probability statistics ======\n";
    s += &format!("Mean    Δp: {:6.3} ± {:5.3} %\n", 100.0 * r.p_diff.value, 100.0 * r.p_diff.uncertainty);
    for (label, v) in [
        ("Maximum Δp", d.max),
        ("99.9%   Δp", d.p99_9),
        ("99.0%   Δp", d.p99),
        ("95.0%   Δp", d.p95),
        ("90.0%   Δp", d.p90),
        ("75.0%   Δp", d.p75),
        ("Median  Δp", d.median),
        ("25.0%   Δp", d.p25),
        ("10.0%   Δp", d.p10),
        (" 5.0%   Δp", d.p5),
        (" 1.0%   Δp", d.p1),
        (" 0.1%   Δp", d.p0_1),
        ("Minimum Δp", d.min),
    ] {
        s += &format!("{label}: {:6.3}%\n", 100.0 * v);
    }
    s += &format!("RMS Δp    : {:6.3} ± {:5.3} %\n", 100.0 * r.p_diff_rms.value, 100.0 * r.p_diff_rms.uncertainty);
    s += &format!("Same top p: {:6.3} ± {:5.3} %\n", 100.0 * r.same_top.value, 100.0 * r.same_top.uncertainty);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::perplexity::{Estimate, KlRunning};

    fn est(value: f64, uncertainty: f64) -> Estimate {
        Estimate { value, uncertainty }
    }

    #[test]
    fn c_printf_spells_nan_as_c_does() {
        assert_eq!(cf(f64::NAN, 6, 3), "   nan");
        assert_eq!(cf(-f64::NAN, 6, 3), "  -nan");
        assert_eq!(cf(1.23456, 9, 4), "   1.2346");
    }

    #[test]
    fn kl_rows_match_llama_perplexitys_columns() {
        let running = KlRunning {
            ppl: est(12.5, 0.25),
            ln_ppl_ratio: est(0.01, 0.002),
            kld: est(0.05, 0.001),
            p_diff_rms: est(0.031, 0.002),
            same_top: est(0.9, 0.01),
        };
        let c = KlChunkResult { chunk: 3, n_chunk: 10, running, count: 768, elapsed_s: 1.0 };
        assert_eq!(
            kl_line(&c),
            "   3      12.5000 ±    0.2500       0.01000 ±    0.00200       0.05000 ±    0.00100     3.100 \
             ±  0.200 %    90.000 ±  1.000 %\n"
        );
    }

    #[test]
    fn a_perplexity_run_writes_chunks_then_the_final_estimate() {
        let layout = Layout { n_ctx: 128, n_batch: 256, n_seq: 2, num_batches: 1 };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut rep = TextReport::new(&mut out, &mut err, layout);
        rep.start(&PerplexityTask::Perplexity { text: "t.txt".into() }, None);
        for (chunk, ppl) in [(1, 20.0), (2, 18.123456)] {
            let c = crate::perplexity::ChunkResult {
                chunk,
                n_chunk: 2,
                ppl,
                ppl_uncertainty: 1.0,
                chunk_ppl: ppl,
                count: 64,
                elapsed_s: 0.5,
            };
            rep.progress(&PerplexityProgress::Chunk(c));
        }
        // finish() end to end: scripts/fidelity_perplexity.py compares the whole text with
        // llama-perplexity's; its pieces here.
        drop(rep);
        assert_eq!(String::from_utf8(out).unwrap(), "[1]20.0000,[2]18.1235,");
        let err = String::from_utf8(err).unwrap();
        assert_eq!(
            err,
            "perplexity: tokenizing the input ..\nperplexity: calculating perplexity over 2 chunks, n_ctx=128, \
             batch_size=256, n_seq=2\n"
        );
        assert_eq!(final_estimate(18.123456, 0.987654), "Final estimate: PPL = 18.1235 +/- 0.98765\n");
    }

    #[test]
    fn a_kl_run_starts_with_the_table_header() {
        let layout = Layout { n_ctx: 64, n_batch: 64, n_seq: 1, num_batches: 1 };
        let base =
            KlBaseHeader { path: "b.kld".into(), n_ctx: 64, n_vocab: 100, n_chunk: 7, file_bytes: 0, tokens: vec![] };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        TextReport::new(&mut out, &mut err, layout)
            .start(&PerplexityTask::KlDivergence { base: "b.kld".into() }, Some(&base));
        assert_eq!(String::from_utf8(out).unwrap(), KL_TABLE_HEADER);
        assert_eq!(
            String::from_utf8(err).unwrap(),
            "kl_divergence: computing over 7 chunks, n_ctx=64, batch_size=64, n_seq=1\n"
        );
    }
}
