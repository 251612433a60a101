//! The evaluation itself: chunks decoded in llama-perplexity's layout, scored on other
//! threads while the next batch decodes, summed in token order.

use super::klfile::KlBaseWriter;
use super::score::KlRow;
use super::stats::KlSums;
use super::*;
use crate::provenance::{DatasetProvenance, ModelProvenance};
use crate::{Context, Model, Provenance};
use rayon::prelude::*;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Measures the perplexity of `model` on `text`, calling `progress` after each chunk.
///
/// # Errors
/// Parameter errors ([`PerplexityError::BatchNotMultiple`], [`PerplexityError::InvalidParam`]),
/// [`PerplexityError::TooFewTokens`], [`PerplexityError::Context`] if the context cannot be
/// created, [`PerplexityError::Decode`].
pub fn perplexity(
    model: &Model,
    text: &Text,
    params: &PerplexityConfig,
    progress: impl FnMut(&ChunkResult),
) -> Result<PerplexityResult, PerplexityError> {
    let mut ctx = model.new_context(&params.context_params()?)?;
    run_ppl(&mut ctx, text, params, None, progress)
}

/// [`perplexity`] in an existing context (it must hold `n_seq` sequences of `n_ctx` tokens and
/// take `n_batch` tokens a decode: see [`PerplexityConfig::context_params`]). Its KV cache is
/// cleared.
///
/// # Errors
/// As [`perplexity`], and [`PerplexityError::ContextTooSmall`].
pub fn perplexity_in(
    ctx: &mut Context<'_>,
    text: &Text,
    params: &PerplexityConfig,
    progress: impl FnMut(&ChunkResult),
) -> Result<PerplexityResult, PerplexityError> {
    run_ppl(ctx, text, params, None, progress)
}

/// Measures perplexity like [`perplexity`] and writes the model's log-probabilities to `path`
/// in llama-perplexity's `--kl-divergence-base` format. The PPL is computed as llama-perplexity
/// computes it in that mode (which rounds slightly differently from the plain mode).
///
/// # Errors
/// As [`perplexity`], and [`PerplexityError::Io`] writing the file (which is then removed).
pub fn save_kl_base(
    model: &Model,
    text: &Text,
    params: &PerplexityConfig,
    path: impl AsRef<Path>,
    progress: impl FnMut(&ChunkResult),
) -> Result<PerplexityResult, PerplexityError> {
    let mut ctx = model.new_context(&params.context_params()?)?;
    save_kl_base_in(&mut ctx, text, params, path, progress)
}

/// [`save_kl_base`] in an existing context.
///
/// # Errors
/// As [`save_kl_base`] and [`perplexity_in`].
pub fn save_kl_base_in(
    ctx: &mut Context<'_>,
    text: &Text,
    params: &PerplexityConfig,
    path: impl AsRef<Path>,
    progress: impl FnMut(&ChunkResult),
) -> Result<PerplexityResult, PerplexityError> {
    let path = path.as_ref();
    let r = run_ppl(ctx, text, params, Some(path), progress);
    if r.is_err() {
        let _ = std::fs::remove_file(path);
    }
    r
}

/// Evaluates `model` against the base file at `base` (from [`save_kl_base`] or
/// llama-perplexity `--kl-divergence-base`): KL divergence, PPL ratio and difference, top-token
/// agreement. `params.n_ctx` must equal the file's chunk length (read it with
/// [`KlBaseHeader::read`]).
///
/// # Errors
/// [`PerplexityError::NotAKlBase`], [`PerplexityError::KlTruncated`],
/// [`PerplexityError::KlInvalid`], [`PerplexityError::KlVocabMismatch`],
/// [`PerplexityError::KlContextMismatch`], and those of [`perplexity`].
pub fn kl_divergence(
    model: &Model,
    base: impl AsRef<Path>,
    params: &PerplexityConfig,
    progress: impl FnMut(&KlChunkResult),
) -> Result<KlDivergenceResult, PerplexityError> {
    let (header, reader) = open_base(model, base.as_ref(), params)?;
    let mut ctx = model.new_context(&params.context_params()?)?;
    run_kl(&mut ctx, header, reader, params, progress)
}

/// [`kl_divergence`] in an existing context.
///
/// # Errors
/// As [`kl_divergence`] and [`perplexity_in`].
pub fn kl_divergence_in(
    ctx: &mut Context<'_>,
    base: impl AsRef<Path>,
    params: &PerplexityConfig,
    progress: impl FnMut(&KlChunkResult),
) -> Result<KlDivergenceResult, PerplexityError> {
    let (header, reader) = open_base(ctx.model(), base.as_ref(), params)?;
    run_kl(ctx, header, reader, params, progress)
}

fn open_base(
    model: &Model,
    path: &Path,
    params: &PerplexityConfig,
) -> Result<(KlBaseHeader, BufReader<File>), PerplexityError> {
    let (header, reader) = KlBaseHeader::read(path)?;
    let n_vocab = model.info().n_vocab;
    if header.n_vocab != n_vocab {
        return Err(PerplexityError::KlVocabMismatch {
            path: path.to_path_buf(),
            file: header.n_vocab,
            model: n_vocab,
        });
    }
    if header.n_ctx != params.n_ctx {
        return Err(PerplexityError::KlContextMismatch {
            path: path.to_path_buf(),
            file: header.n_ctx,
            requested: params.n_ctx,
        });
    }
    Ok((header, reader))
}

// ---------------------------------------------------------------------------------------------
// The evaluation loop.

/// What the scoring thread does with a batch of chunks; moved into it and handed back.
enum Mode {
    Ppl,
    SaveBase { writer: KlBaseWriter, records: Vec<u16> },
    Kl { reader: BufReader<File>, path: PathBuf, base: Vec<u16> },
}

enum Scored {
    Nll(Vec<Vec<f64>>),
    Kl(Vec<Vec<KlRow>>),
}

struct Job {
    mode: Mode,
    /// Per sequence: `n_rows * n_vocab` logits.
    bufs: Vec<Vec<f32>>,
}

struct Shared<'a> {
    tokens: &'a [i32],
    n_ctx: usize,
    first: usize,
    n_rows: usize,
    n_vocab: usize,
    pool: Option<&'a rayon::ThreadPool>,
}

impl Shared<'_> {
    /// The tokens row `r` of chunk `chunk` predicts: `n_rows` of them.
    fn targets(&self, chunk: usize) -> &[i32] {
        let s = chunk * self.n_ctx + self.first + 1;
        &self.tokens[s..s + self.n_rows]
    }

    fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        match self.pool {
            Some(p) => p.install(f),
            None => f(),
        }
    }

    /// Scores `rows[seq][r]`, the logits of row `r` of chunk `first_chunk + seq`.
    fn score(&self, mode: &mut Mode, rows: &[Vec<&[f32]>], first_chunk: usize) -> Result<Scored, PerplexityError> {
        let nv_rec = record_len(self.n_vocab as u32);
        let n_seq = rows.len();
        match mode {
            Mode::Ppl => {
                let out = (0..n_seq)
                    .map(|seq| {
                        let targets = self.targets(first_chunk + seq);
                        let rows = &rows[seq];
                        self.install(|| {
                            rows.par_iter()
                                .zip(targets.par_iter())
                                .map(|(row, &t)| score::nll(row, t as usize))
                                .collect::<Vec<f64>>()
                        })
                    })
                    .collect();
                Ok(Scored::Nll(out))
            }
            Mode::SaveBase { writer, records } => {
                let mut out = Vec::with_capacity(n_seq);
                for seq in 0..n_seq {
                    let targets = self.targets(first_chunk + seq);
                    let rows = &rows[seq];
                    records.clear();
                    records.resize(self.n_rows * nv_rec, 0);
                    let nll = self.install(|| {
                        records
                            .par_chunks_mut(nv_rec)
                            .zip(rows.par_iter())
                            .zip(targets.par_iter())
                            .map(|((rec, row), &t)| score::nll_and_quantize(row, t as usize, rec))
                            .collect::<Vec<f64>>()
                    });
                    writer.write_records(records)?;
                    out.push(nll);
                }
                Ok(Scored::Nll(out))
            }
            Mode::Kl { reader, path, base } => {
                let mut out = Vec::with_capacity(n_seq);
                for seq in 0..n_seq {
                    klfile::read_chunk(reader, self.n_rows, nv_rec, path, base)?;
                    let targets = self.targets(first_chunk + seq);
                    let rows = &rows[seq];
                    let base = &*base;
                    let r = self.install(|| {
                        base.par_chunks(nv_rec)
                            .zip(rows.par_iter())
                            .zip(targets.par_iter())
                            .map(|((b, row), &t)| score::kl_row(row, b, t as usize))
                            .collect::<Vec<KlRow>>()
                    });
                    out.push(r);
                }
                Ok(Scored::Kl(out))
            }
        }
    }
}

/// Everything the evaluation loop produced, before mode-specific summarising.
struct LoopOut {
    mode: Mode,
    seconds_per_pass: f64,
    total_s: f64,
}

fn check_context(ctx: &Context<'_>, layout: &Layout) -> Result<(), PerplexityError> {
    let checks = [
        ("n_seq_max", ctx.n_seq_max(), layout.n_seq),
        ("per-sequence context (n_ctx_seq)", ctx.n_ctx_seq(), layout.n_ctx),
        ("n_batch", ctx.n_batch(), layout.n_batch),
    ];
    for (what, have, need) in checks {
        if have < need {
            return Err(PerplexityError::ContextTooSmall { what, have, need });
        }
    }
    Ok(())
}

/// Decodes `n_chunk` chunks of `tokens` and hands each batch of chunks to the scorer, which
/// runs on another thread while the next batch decodes. `on_scored(first_chunk, scored)` runs
/// on this thread, in chunk order.
#[allow(clippy::too_many_arguments)]
fn eval_loop(
    ctx: &mut Context<'_>,
    tokens: &[i32],
    layout: Layout,
    n_chunk: usize,
    params: &PerplexityConfig,
    mode: Mode,
    start: Instant,
    mut on_scored: impl FnMut(usize, Scored, f64) -> Result<(), PerplexityError>,
) -> Result<LoopOut, PerplexityError> {
    let model = ctx.model();
    let n_vocab = model.info().n_vocab as usize;
    let add_bos = model.add_bos();
    let bos = model.token_bos();
    let n_ctx = layout.n_ctx as usize;
    let n_batch = layout.n_batch as usize;
    let n_seq = layout.n_seq as usize;
    let first = n_ctx / 2;
    let n_rows = scored_per_chunk(layout.n_ctx);

    let scoring_threads = match params.scoring_threads {
        0 if params.overlap => crate::system::n_cpus_available().saturating_sub(params.n_threads as usize).max(1),
        n => n,
    };
    let pool = match scoring_threads {
        0 => None,
        n => Some(
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .map_err(|e| PerplexityError::InvalidParam { name: "scoring_threads", reason: e.to_string() })?,
        ),
    };
    let shared = Shared { tokens, n_ctx, first, n_rows, n_vocab, pool: pool.as_ref() };
    let mut batch = crate::Batch::new(n_batch.min(n_seq * n_ctx), 1)?;
    let mut spare: Vec<Vec<Vec<f32>>> = Vec::new();
    let mut seconds_per_pass = 0.0;

    std::thread::scope(|s| -> Result<LoopOut, PerplexityError> {
        type Handle<'s> = std::thread::ScopedJoinHandle<'s, (Job, Result<Scored, PerplexityError>)>;
        let shared = &shared;
        let mut mode = Some(mode);
        let mut pending: Option<(usize, Handle<'_>)> = None;

        let finish = |pending: (usize, Handle<'_>),
                      mode: &mut Option<Mode>,
                      spare: &mut Vec<Vec<Vec<f32>>>|
         -> Result<(usize, Scored), PerplexityError> {
            let (first_chunk, h) = pending;
            let (job, scored) = h.join().map_err(|_| PerplexityError::ScorerPanicked)?;
            *mode = Some(job.mode);
            spare.push(job.bufs);
            Ok((first_chunk, scored?))
        };
        // Without overlap and with one decode per chunk, rows are scored where llama.cpp left
        // them; otherwise they are copied out (the next decode overwrites them).
        let copy = params.overlap || layout.num_batches > 1;

        for i in (0..n_chunk).step_by(n_seq) {
            let start_tok = i * n_ctx;
            let end_tok = start_tok + n_ctx;
            let n_seq_batch = n_seq.min(n_chunk - i);
            let t_pass = Instant::now();

            let mut bufs = spare.pop().unwrap_or_default();
            if copy {
                bufs.resize_with(n_seq_batch, Vec::new);
                for b in &mut bufs {
                    b.resize(n_rows * n_vocab, 0.0);
                }
            }

            ctx.memory_clear(true);
            let mut batch_size = 0;
            for j in 0..layout.num_batches as usize {
                let batch_start = start_tok + j * n_batch;
                batch_size = (end_tok - batch_start).min(n_batch);
                batch.clear();
                for seq in 0..n_seq_batch {
                    let seq_start = batch_start + seq * n_ctx;
                    for k in 0..batch_size {
                        let pos = j * n_batch + k;
                        let tok = if add_bos && j == 0 && k == 0 { bos } else { tokens[seq_start + k] };
                        batch.add(tok, pos as i32, &[seq as i32], pos >= first)?;
                    }
                }
                ctx.decode(&batch)?;
                if !copy {
                    continue;
                }
                for (seq, buf) in bufs.iter_mut().enumerate() {
                    for k in 0..batch_size {
                        let pos = j * n_batch + k;
                        if pos < first || pos >= n_ctx - 1 {
                            continue;
                        }
                        let index = seq * batch_size + k;
                        let row = ctx.logits_ith(index as i32).ok_or(PerplexityError::MissingLogits { index })?;
                        let r = pos - first;
                        buf[r * n_vocab..(r + 1) * n_vocab].copy_from_slice(row);
                    }
                }
            }
            if i == 0 {
                seconds_per_pass = t_pass.elapsed().as_secs_f64();
            }
            if !params.overlap {
                let rows: Vec<Vec<&[f32]>> = if copy {
                    bufs.iter().map(|b| b.chunks_exact(n_vocab).collect()).collect()
                } else {
                    let mut rows = Vec::with_capacity(n_seq_batch);
                    for seq in 0..n_seq_batch {
                        let r = (first..n_ctx - 1)
                            .map(|k| {
                                let index = seq * batch_size + k;
                                ctx.logits_ith(index as i32).ok_or(PerplexityError::MissingLogits { index })
                            })
                            .collect::<Result<Vec<_>, _>>()?;
                        rows.push(r);
                    }
                    rows
                };
                let m = mode.as_mut().expect("mode present without overlap");
                let scored = shared.score(m, &rows, i)?;
                drop(rows);
                spare.push(bufs);
                on_scored(i, scored, start.elapsed().as_secs_f64())?;
                continue;
            }
            if let Some(p) = pending.take() {
                let (c, scored) = finish(p, &mut mode, &mut spare)?;
                on_scored(c, scored, start.elapsed().as_secs_f64())?;
            }
            let mut job = Job { mode: mode.take().expect("mode is handed back by every job"), bufs };
            let h = s.spawn(move || {
                let rows: Vec<Vec<&[f32]>> = job.bufs.iter().map(|b| b.chunks_exact(n_vocab).collect()).collect();
                let r = shared.score(&mut job.mode, &rows, i);
                drop(rows);
                (job, r)
            });
            pending = Some((i, h));
        }
        if let Some(p) = pending.take() {
            let (c, scored) = finish(p, &mut mode, &mut spare)?;
            on_scored(c, scored, start.elapsed().as_secs_f64())?;
        }
        Ok(LoopOut { mode: mode.expect("mode handed back"), seconds_per_pass, total_s: start.elapsed().as_secs_f64() })
    })
}

fn run_params(params: &PerplexityConfig, layout: Layout, n_chunk: usize, add_bos: bool) -> RunInfo {
    RunInfo { requested: params.clone(), layout, n_chunk, add_bos }
}

fn run_ppl(
    ctx: &mut Context<'_>,
    text: &Text,
    params: &PerplexityConfig,
    kl_base: Option<&Path>,
    mut progress: impl FnMut(&ChunkResult),
) -> Result<PerplexityResult, PerplexityError> {
    let layout = params.layout()?;
    check_context(ctx, &layout)?;
    let model = ctx.model();
    if model.add_eos() {
        return Err(PerplexityError::VocabAddsEos);
    }
    let t0 = Instant::now();
    let tokens = model.tokenize(text.as_str(), true)?;
    let tokenize_ms = t0.elapsed().as_secs_f64() * 1e3;
    let n_ctx = layout.n_ctx as usize;
    if tokens.len() < 2 * n_ctx {
        return Err(PerplexityError::TooFewTokens { n_tokens: tokens.len(), needed: 2 * n_ctx, n_ctx: layout.n_ctx });
    }
    let n_chunk_max = tokens.len() / n_ctx;
    let n_chunk = params.chunks.map_or(n_chunk_max, |c| c.min(n_chunk_max));
    let n_vocab = model.info().n_vocab;

    let mode = match kl_base {
        None => Mode::Ppl,
        Some(path) => Mode::SaveBase {
            writer: KlBaseWriter::create(path, layout.n_ctx, n_vocab, n_chunk as u32, &tokens[..n_chunk * n_ctx])?,
            records: Vec::new(),
        },
    };

    let (mut nll, mut nll2, mut count) = (0.0f64, 0.0f64, 0usize);
    let mut chunks = Vec::with_capacity(n_chunk);
    let started_at = crate::provenance::rfc3339_now();
    let start = Instant::now();
    let out = eval_loop(ctx, &tokens, layout, n_chunk, params, mode, start, |first_chunk, scored, elapsed_s| {
        let Scored::Nll(per_seq) = scored else { unreachable!("perplexity mode scores NLL") };
        for (seq, values) in per_seq.iter().enumerate() {
            let mut chunk_nll = 0.0;
            for &v in values {
                nll += v;
                nll2 += v * v;
                chunk_nll += v;
            }
            count += values.len();
            let (ppl, ppl_uncertainty) = stats::ppl_estimate(nll, nll2, count);
            let c = ChunkResult {
                chunk: first_chunk + seq + 1,
                n_chunk,
                ppl,
                ppl_uncertainty,
                chunk_ppl: (chunk_nll / values.len() as f64).exp(),
                count,
                elapsed_s,
            };
            progress(&c);
            chunks.push(c);
        }
        Ok(())
    })?;
    let written = match out.mode {
        Mode::SaveBase { writer, .. } => {
            let path = writer.path.clone();
            writer.finish()?;
            Some(path)
        }
        _ => None,
    };
    let (ppl, ppl_uncertainty) = stats::ppl_estimate(nll, nll2, count);
    let n_tokens_evaluated = n_chunk * n_ctx;
    Ok(PerplexityResult {
        telemetry: crate::telemetry::Telemetry::default(),
        text: text.info().clone(),
        model: model.info().clone(),
        params: run_params(params, layout, n_chunk, model.add_bos()),
        n_tokens: tokens.len(),
        n_tokens_evaluated,
        n_scored: count,
        ppl,
        ppl_uncertainty,
        nll_mean: nll / count as f64,
        chunks,
        kl_base: written,
        timings: Timings {
            tokenize_ms,
            seconds_per_pass: out.seconds_per_pass,
            total_s: out.total_s,
            tokens_per_s: n_tokens_evaluated as f64 / out.total_s,
        },
        provenance: provenance(started_at, model, params).dataset(DatasetProvenance::file(
            "text",
            text.info().path.as_deref(),
            text.info().bytes,
            Some(text.info().sha256.clone()),
        )),
    })
}

/// The provenance of a run on `model` with `params`, started at `started_at`.
fn provenance(started_at: String, model: &crate::Model, params: &PerplexityConfig) -> Provenance {
    let mut p = Provenance::now().model(ModelProvenance::from_info(model.info().clone())).setting("params", params);
    p.started_at = started_at;
    p
}

fn run_kl(
    ctx: &mut Context<'_>,
    header: KlBaseHeader,
    reader: BufReader<File>,
    params: &PerplexityConfig,
    mut progress: impl FnMut(&KlChunkResult),
) -> Result<KlDivergenceResult, PerplexityError> {
    let layout = params.layout()?;
    check_context(ctx, &layout)?;
    let model = ctx.model();
    let n_chunk = params.chunks.map_or(header.n_chunk as usize, |c| c.min(header.n_chunk as usize));
    let n_rows = scored_per_chunk(header.n_ctx);
    let mut sums = KlSums::default();
    let mut kld_values: Vec<f32> = Vec::with_capacity(n_chunk * n_rows);
    let mut p_diff_values: Vec<f32> = Vec::with_capacity(n_chunk * n_rows);
    let mut chunks = Vec::with_capacity(n_chunk);
    let mode = Mode::Kl { reader, path: header.path.clone(), base: Vec::new() };
    let started_at = crate::provenance::rfc3339_now();
    let start = Instant::now();
    let out =
        eval_loop(ctx, &header.tokens, layout, n_chunk, params, mode, start, |first_chunk, scored, elapsed_s| {
            let Scored::Kl(per_seq) = scored else { unreachable!("KL mode scores KL rows") };
            for (seq, rows) in per_seq.iter().enumerate() {
                for r in rows {
                    sums.add(r);
                    kld_values.push(r.kld as f32);
                    p_diff_values.push(r.p_diff);
                }
                let c = KlChunkResult {
                    chunk: first_chunk + seq + 1,
                    n_chunk,
                    running: sums.running(),
                    count: sums.count,
                    elapsed_s,
                };
                progress(&c);
                chunks.push(c);
            }
            Ok(())
        })?;
    let (kld, kld_unc) = stats::mean_and_uncertainty(sums.sum_kld, sums.sum_kld2, sums.count);
    let (p_diff, p_diff_unc) = stats::mean_and_uncertainty(sums.sum_p_diff, sums.sum_p_diff2, sums.count);
    let running = sums.running();
    let n_tokens_evaluated = n_chunk * header.n_ctx as usize;
    Ok(KlDivergenceResult {
        telemetry: crate::telemetry::Telemetry::default(),
        model: model.info().clone(),
        params: run_params(params, layout, n_chunk, model.add_bos()),
        n_scored: sums.count,
        ppl: sums.ppl_stats(),
        kld: Estimate { value: kld, uncertainty: kld_unc },
        kld_distribution: Distribution::of(&mut kld_values),
        p_diff: Estimate { value: p_diff, uncertainty: p_diff_unc },
        p_diff_distribution: Distribution::of(&mut p_diff_values),
        p_diff_rms: running.p_diff_rms,
        same_top: running.same_top,
        chunks,
        timings: Timings {
            tokenize_ms: 0.0,
            seconds_per_pass: out.seconds_per_pass,
            total_s: out.total_s,
            tokens_per_s: n_tokens_evaluated as f64 / out.total_s,
        },
        provenance: provenance(started_at, model, params).dataset(DatasetProvenance::file(
            "kl-base",
            Some(&header.path),
            header.file_bytes,
            None,
        )),
        base: header,
    })
}
