//! A single test on a live context, repeatable on demand: the building block for criterion
//! (`iter_custom` + `Throughput::Elements(tokens)`) and other harnesses.

use super::params::Test;
use super::runner::{run_gen, run_prompt, BenchError};
use crate::batch::Batch;
use crate::context::{Context, ContextParams};
use crate::model::Model;
use crate::threadpool::{ThreadPool, ThreadPoolParams};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A pp/tg test bound to its own context and threadpool.
///
/// ```no_run
/// # use benchkit::{Backend, Model, ModelParams, ContextParams, ThreadPoolParams};
/// # use benchkit::bench::{Measurer, Test};
/// let backend = Backend::init()?;
/// let model = Model::load(&backend, "model.gguf", &ModelParams::default())?;
/// let mut m = Measurer::new(&model, Test::pp(512), &ContextParams::default(), &ThreadPoolParams::new(2), 1)?;
/// let elapsed = m.iter_custom(3); // what criterion's iter_custom wants
/// println!("{:.1} t/s", 3.0 * m.tokens_per_run() as f64 / elapsed.as_secs_f64());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Measurer<'m> {
    ctx: Context<'m>,
    batch: Batch,
    rng: ChaCha8Rng,
    test: Test,
    n_batch: u32,
}

impl<'m> Measurer<'m> {
    /// Creates the context (sized for the test) and threadpool, and runs one warmup.
    ///
    /// # Errors
    /// [`BenchError`] if the context, pool or warmup fails.
    pub fn new(
        model: &'m Model,
        test: Test,
        ctx_params: &ContextParams,
        pool: &ThreadPoolParams,
        seed: u64,
    ) -> Result<Self, BenchError> {
        let params = ContextParams {
            n_ctx: (test.n_prompt + test.n_gen + test.n_depth).max(1),
            n_threads: pool.n_threads as u32,
            n_threads_batch: pool.n_threads as u32,
            ..ctx_params.clone()
        };
        let mut ctx = Context::new(model, &params)?;
        ctx.attach_threadpool(Arc::new(ThreadPool::new(pool)?), None);
        let n_batch = params.n_batch;
        let batch = Batch::new(n_batch as usize, 1)?;
        let mut m = Measurer { ctx, batch, rng: ChaCha8Rng::seed_from_u64(seed), test, n_batch };
        m.run_once()?;
        Ok(m)
    }

    /// Tokens timed per run (n_prompt + n_gen).
    pub fn tokens_per_run(&self) -> u64 {
        self.test.n_tokens()
    }

    /// One timed repetition: clear memory, fill depth (untimed), then time pp and/or tg.
    ///
    /// # Errors
    /// [`BenchError::Decode`] if a decode fails.
    pub fn run_once(&mut self) -> Result<Duration, BenchError> {
        self.ctx.memory_clear(false);
        if self.test.n_depth > 0 {
            run_prompt(&mut self.ctx, &mut self.batch, self.test.n_depth, self.n_batch, &mut self.rng)?;
        }
        let start = Instant::now();
        if self.test.n_prompt > 0 {
            run_prompt(&mut self.ctx, &mut self.batch, self.test.n_prompt, self.n_batch, &mut self.rng)?;
        }
        if self.test.n_gen > 0 {
            run_gen(&mut self.ctx, &mut self.batch, self.test.n_gen, &mut self.rng)?;
        }
        Ok(start.elapsed())
    }

    /// Total time of `iters` runs, for criterion's `iter_custom`.
    ///
    /// # Panics
    /// If a decode fails (criterion offers no error channel; [`Measurer::run_once`] does).
    pub fn iter_custom(&mut self, iters: u64) -> Duration {
        (0..iters).map(|_| self.run_once().expect("benchkit measurement failed")).sum()
    }
}
