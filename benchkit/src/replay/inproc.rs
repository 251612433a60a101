//! In-process target: a llama.cpp context with `n_seq_max` slots and continuous batching.
//!
//! Requests are admitted into free sequence slots as they arrive; every engine step packs the
//! prefill chunks of newly admitted requests and one decode token of every generating request
//! into a single `llama_decode` call. Sampling is greedy and generation runs to the requested
//! length (EOS ignored unless `stop_at_eos`). This measures the engine without any server.

use super::types::{Failure, RecordFuture, Request, RequestRecord, Target, TokenCountSource};
use crate::batch::Batch;
use crate::context::{Context, ContextParams};
use crate::model::{Model, ModelError, ModelParams};
use crate::threadpool::{ThreadPool, ThreadPoolError, ThreadPoolParams};
use crate::Backend;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Instant;

/// Configuration of the in-process engine.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct InprocConfig {
    /// Model file.
    pub model: PathBuf,
    /// Model parameters.
    pub model_params: ModelParams,
    /// Context parameters; `n_seq_max` is the number of slots, `n_ctx` is shared by them
    /// (each slot gets `n_ctx / n_seq_max`), `n_batch` bounds the tokens of one engine step.
    pub context: ContextParams,
    /// CPU threadpool (thread count, mask, strict placement, priority, poll); `None` uses the
    /// context's thread count with llama-bench's defaults. A persistent pool matters: without
    /// one ggml starts threads for every decode.
    pub threadpool: Option<ThreadPoolParams>,
    /// Stop a request at the model's end-of-generation token instead of its target length.
    pub stop_at_eos: bool,
    /// Keep the generated text in each record.
    pub keep_text: bool,
}

impl InprocConfig {
    /// `slots` sequences of `ctx_per_slot` tokens each, llama-bench's other defaults.
    pub fn new(model: impl Into<PathBuf>, slots: u32, ctx_per_slot: u32) -> Self {
        InprocConfig {
            model: model.into(),
            model_params: ModelParams::default(),
            context: ContextParams::default().n_seq_max(slots).n_ctx(slots * ctx_per_slot),
            threadpool: None,
            stop_at_eos: false,
            keep_text: false,
        }
    }
}

/// Errors starting the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InprocError {
    /// Model loading failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Context creation failed.
    #[error(transparent)]
    Context(#[from] crate::ContextError),
    /// The threadpool could not be created.
    #[error(transparent)]
    ThreadPool(#[from] ThreadPoolError),
    /// The engine thread stopped before it was ready.
    #[error("the in-process engine thread stopped during start-up")]
    EngineGone,
    /// A step decodes one token for every active slot, so `n_batch` must hold them all.
    #[error("n_batch {n_batch} is smaller than n_seq_max {n_seq_max}: one engine step decodes a token for every slot")]
    BatchSmallerThanSlots {
        /// The context's n_batch.
        n_batch: u32,
        /// The number of slots.
        n_seq_max: u32,
    },
}

struct Job {
    request: Request,
    start: Instant,
    sent_ns: u64,
    reply: tokio::sync::oneshot::Sender<RequestRecord>,
}

/// The in-process target. Dropping it lets the engine finish active requests and stop.
pub struct InprocTarget {
    tx: mpsc::Sender<Job>,
    describe: String,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl InprocTarget {
    /// Loads the model and starts the engine thread.
    ///
    /// # Errors
    /// [`InprocError`] if the model or context cannot be created, or `n_batch` cannot hold a
    /// token for every slot.
    pub fn start(backend: &Backend, config: InprocConfig) -> Result<Self, InprocError> {
        let (n_batch, n_seq_max) = (config.context.n_batch, config.context.n_seq_max);
        if n_batch < n_seq_max {
            return Err(InprocError::BatchSmallerThanSlots { n_batch, n_seq_max });
        }
        let (tx, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<String, InprocError>>();
        let backend = *backend;
        let thread = std::thread::Builder::new()
            .name("benchkit-inproc".into())
            .spawn(move || {
                let model = match Model::load(&backend, &config.model, &config.model_params) {
                    Ok(m) => m,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.into()));
                        return;
                    }
                };
                let mut ctx = match model.new_context(&config.context) {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.into()));
                        return;
                    }
                };
                let pool_params = config
                    .threadpool
                    .clone()
                    .unwrap_or_else(|| ThreadPoolParams::new(config.context.n_threads as usize));
                match ThreadPool::new(&pool_params) {
                    Ok(pool) => ctx.attach_threadpool(std::sync::Arc::new(pool), None),
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.into()));
                        return;
                    }
                }
                let _ = ready_tx.send(Ok(format!("inproc:{}", model.info().description)));
                Engine::new(ctx, &config).run(rx);
            })
            .map_err(|_| InprocError::EngineGone)?;
        let describe = ready_rx.recv().map_err(|_| InprocError::EngineGone)??;
        Ok(InprocTarget { tx, describe, thread: Some(thread) })
    }
}

impl Drop for InprocTarget {
    fn drop(&mut self) {
        // Closing the channel stops the engine once its active requests finish.
        let (tx, _) = mpsc::channel();
        drop(std::mem::replace(&mut self.tx, tx));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Target for InprocTarget {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn send(&self, request: Request, start: Instant) -> RecordFuture {
        let (reply, rx) = tokio::sync::oneshot::channel();
        let sent_ns = start.elapsed().as_nanos() as u64;
        let fallback = failed(&request, sent_ns, Failure::Other { detail: "in-process engine stopped".into() });
        let _ = self.tx.send(Job { request, start, sent_ns, reply });
        Box::pin(async move { rx.await.unwrap_or(fallback) })
    }
}

fn failed(r: &Request, now_ns: u64, failure: Failure) -> RequestRecord {
    RequestRecord {
        id: r.id,
        conversation_id: r.conversation_id.clone(),
        turn: r.turn,
        warmup: r.warmup,
        scheduled_ns: r.scheduled_ns,
        sent_ns: now_ns,
        first_token_ns: None,
        itl_ns: Vec::new(),
        end_ns: now_ns,
        input_tokens: r.prompt_len,
        output_tokens: 0,
        output_tokens_source: TokenCountSource::Engine,
        failure: Some(failure),
        text: None,
    }
}

struct Active {
    job: Job,
    seq: i32,
    prompt: Vec<i32>,
    prefilled: usize,
    generated: u32,
    next: i32,
    last_token_ns: u64,
    record: RequestRecord,
    text: Vec<u8>,
}

struct Engine<'m> {
    ctx: Context<'m>,
    slots: Vec<Option<Active>>,
    batch: Batch,
    n_batch: usize,
    ctx_per_slot: usize,
    stop_at_eos: bool,
    keep_text: bool,
}

impl<'m> Engine<'m> {
    fn new(ctx: Context<'m>, config: &InprocConfig) -> Self {
        let n_slots = ctx.n_seq_max() as usize;
        let n_batch = ctx.n_batch() as usize;
        let ctx_per_slot = ctx.n_ctx_seq().max(1) as usize;
        Engine {
            batch: Batch::new(n_batch, 1).expect("n_batch > 0"),
            slots: (0..n_slots).map(|_| None).collect(),
            ctx,
            n_batch,
            ctx_per_slot,
            stop_at_eos: config.stop_at_eos,
            keep_text: config.keep_text,
        }
    }

    fn now(job: &Job) -> u64 {
        job.start.elapsed().as_nanos() as u64
    }

    fn admit(&mut self, job: Job) {
        let model = self.ctx.model();
        let prompt = match &job.request.prompt_tokens {
            Some(t) => t.clone(),
            None => {
                let text = if job.request.messages.len() == 1 {
                    job.request.messages[0].content.clone()
                } else {
                    job.request.messages.iter().map(|m| format!("{}: {}\n", m.role, m.content)).collect()
                };
                match model.tokenize(&text, true) {
                    Ok(t) => t,
                    Err(e) => {
                        let mut rec = failed(&job.request, job.sent_ns, Failure::Other { detail: e.to_string() });
                        rec.end_ns = Self::now(&job);
                        let _ = job.reply.send(rec);
                        return;
                    }
                }
            }
        };
        let n_vocab = model.info().n_vocab as i32;
        let needed = prompt.len() + job.request.output_len as usize;
        let bad = if prompt.is_empty() {
            Some(Failure::Other { detail: "empty prompt".into() })
        } else if needed > self.ctx_per_slot {
            Some(Failure::ContextExceeded {
                detail: format!(
                    "prompt {} + output {} tokens exceed the slot context {}",
                    prompt.len(),
                    job.request.output_len,
                    self.ctx_per_slot
                ),
            })
        } else if prompt.iter().any(|&t| t < 0 || t >= n_vocab) {
            Some(Failure::Other { detail: "prompt token outside the vocabulary".into() })
        } else {
            None
        };
        if let Some(f) = bad {
            let mut rec = failed(&job.request, job.sent_ns, f);
            rec.end_ns = Self::now(&job);
            let _ = job.reply.send(rec);
            return;
        }
        let seq = self.slots.iter().position(Option::is_none).expect("admit only with a free slot");
        // Slot indices are below n_seq_max, so the id is always valid.
        let _ = self.ctx.memory_seq_rm(seq as i32, -1, -1);
        let mut record = failed(&job.request, job.sent_ns, Failure::Other { detail: String::new() });
        record.failure = None;
        record.input_tokens = prompt.len() as u32;
        self.slots[seq] = Some(Active {
            job,
            seq: seq as i32,
            prompt,
            prefilled: 0,
            generated: 0,
            next: 0,
            last_token_ns: 0,
            record,
            text: Vec::new(),
        });
    }

    fn run(mut self, rx: mpsc::Receiver<Job>) {
        let mut open = true;
        loop {
            // Admit arrivals into free slots; block only when idle.
            while open && self.slots.iter().any(Option::is_none) {
                let idle = self.slots.iter().all(Option::is_none);
                let job = if idle { rx.recv().ok() } else { rx.try_recv().ok() };
                match job {
                    Some(j) => self.admit(j),
                    None => {
                        if idle {
                            open = false;
                        }
                        break;
                    }
                }
            }
            if self.slots.iter().all(Option::is_none) {
                if !open {
                    return;
                }
                continue;
            }
            self.step();
        }
    }

    /// One engine step: decode tokens of generating slots first (latency), then fill the rest
    /// of the batch with prefill chunks.
    fn step(&mut self) {
        self.batch.clear();
        // (slot, batch index) of tokens whose logits we sample.
        let mut outputs: Vec<(usize, usize)> = Vec::new();
        for (i, s) in self.slots.iter().enumerate() {
            if let Some(a) = s {
                if a.prefilled == a.prompt.len() {
                    let pos = (a.prompt.len() as u32 + a.generated - 1) as i32;
                    outputs.push((i, self.batch.len()));
                    // Cannot fail: at most n_seq_max tokens here, and start() checked that
                    // n_batch holds them.
                    let _ = self.batch.add(a.next, pos, &[a.seq], true);
                }
            }
        }
        for (i, s) in self.slots.iter_mut().enumerate() {
            let room = self.n_batch - self.batch.len();
            if room == 0 {
                break;
            }
            if let Some(a) = s {
                if a.prefilled < a.prompt.len() {
                    let n = (a.prompt.len() - a.prefilled).min(room);
                    for k in 0..n {
                        let p = a.prefilled + k;
                        let last = p + 1 == a.prompt.len();
                        if last {
                            outputs.push((i, self.batch.len()));
                        }
                        let _ = self.batch.add(a.prompt[p], p as i32, &[a.seq], last);
                    }
                    a.prefilled += n;
                }
            }
        }
        if let Err(e) = self.ctx.decode(&self.batch) {
            // Fail every request in this step; the engine goes on with new ones.
            let detail = e.to_string();
            for (i, _) in outputs {
                if let Some(a) = self.slots[i].take() {
                    self.finish(a, Some(Failure::Other { detail: detail.clone() }));
                }
            }
            return;
        }
        let model = self.ctx.model();
        for (slot, idx) in outputs {
            let Some(logits) = self.ctx.logits_ith(idx as i32) else { continue };
            let tok = argmax(logits);
            let a = self.slots[slot].as_mut().expect("active slot");
            let now = Engine::now(&a.job);
            if a.generated == 0 {
                a.record.first_token_ns = Some(now);
            } else {
                a.record.itl_ns.push(now - a.last_token_ns);
            }
            a.last_token_ns = now;
            a.generated += 1;
            a.next = tok;
            if self.keep_text {
                a.text.extend_from_slice(model.token_to_piece(tok).as_bytes());
            }
            let eos = self.stop_at_eos && model.is_eog(tok);
            if a.generated >= a.job.request.output_len.max(1) || eos {
                let a = self.slots[slot].take().expect("active slot");
                self.finish(a, None);
            }
        }
    }

    fn finish(&mut self, mut a: Active, failure: Option<Failure>) {
        // Slot indices are below n_seq_max, so the id is always valid.
        let _ = self.ctx.memory_seq_rm(a.seq, -1, -1);
        a.record.end_ns = Engine::now(&a.job);
        a.record.output_tokens = a.generated;
        a.record.failure = failure;
        if self.keep_text {
            a.record.text = Some(String::from_utf8_lossy(&a.text).into_owned());
        }
        let _ = a.job.reply.send(a.record);
    }
}

fn argmax(v: &[f32]) -> i32 {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best as i32
}
