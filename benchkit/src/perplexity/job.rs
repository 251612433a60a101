//! A perplexity or KL-divergence run as one value: run in this process, or supervised in a
//! worker process (see [`crate::supervise`]) so that a llama.cpp abort is an error, not the end.

use super::{
    kl_divergence, perplexity, save_kl_base, ChunkResult, KlChunkResult, KlDivergenceResult, PerplexityConfig,
    PerplexityError, PerplexityResult, Text,
};
use crate::supervise::{run_single_measured, Emitter, Event, Isolation, Job, Phase, TrialConfig, TrialError};
use crate::telemetry::{Telemetry, TelemetryConfig};
use crate::{Backend, Model, ModelParams};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// What a run computes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "snake_case")]
#[non_exhaustive]
pub enum PerplexityTask {
    /// Perplexity of `text`.
    Perplexity {
        /// The text file.
        text: PathBuf,
    },
    /// Perplexity of `text`, saving the base log-probabilities to `base` (`--kl-divergence-base`).
    SaveKlBase {
        /// The text file.
        text: PathBuf,
        /// The base file written.
        base: PathBuf,
    },
    /// KL divergence against a base file (`--kl-divergence`).
    KlDivergence {
        /// The base file read.
        base: PathBuf,
    },
}

/// A complete run: model, parameters, task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PerplexityJob {
    /// Model file.
    pub model: PathBuf,
    /// Model parameters.
    pub model_params: ModelParams,
    /// Run parameters.
    pub params: PerplexityConfig,
    /// What to compute.
    pub task: PerplexityTask,
    /// What [`PerplexityJob::execute`] samples while the run goes (the worker from outside,
    /// or this process); not sent to a worker.
    #[serde(skip)]
    pub telemetry: TelemetryConfig,
}

/// A run's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum PerplexityOutput {
    /// Perplexity (also when a base file was saved).
    Perplexity(Box<PerplexityResult>),
    /// KL divergence.
    KlDivergence(Box<KlDivergenceResult>),
}

impl PerplexityOutput {
    /// Sets the result's telemetry, J per token over the tokens evaluated.
    pub fn attach_telemetry(&mut self, mut telemetry: Telemetry) {
        match self {
            PerplexityOutput::Perplexity(r) => {
                telemetry.per_token(r.n_tokens_evaluated as u64);
                r.telemetry = telemetry;
            }
            PerplexityOutput::KlDivergence(r) => {
                telemetry.per_token(r.n_scored as u64);
                r.telemetry = telemetry;
            }
        }
    }
}

/// A chunk's running values, as they are scored.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum PerplexityProgress {
    /// A perplexity chunk.
    Chunk(ChunkResult),
    /// A KL-divergence chunk.
    KlChunk(KlChunkResult),
}

/// Errors of [`PerplexityJob::run_supervised`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SupervisedPerplexityError {
    /// The run's own typed error, checked before a worker starts.
    #[error(transparent)]
    Perplexity(#[from] PerplexityError),
    /// The worker crashed, timed out, or the run failed in it.
    #[error(transparent)]
    Trial(#[from] TrialError),
}

impl PerplexityJob {
    /// Checks the model file's GGUF header, table and tensor index (no llama.cpp load), so a
    /// missing or corrupt model is a typed error before a worker starts.
    ///
    /// # Errors
    /// [`ModelError::InvalidFile`](crate::ModelError::InvalidFile).
    pub fn check_model(&self) -> Result<(), crate::ModelError> {
        crate::gguf::GgufFile::open(&self.model)?;
        Ok(())
    }

    /// Runs in this process.
    ///
    /// # Errors
    /// [`PerplexityError`] for a bad model, text, base file or parameters.
    pub fn run(
        &self,
        backend: &Backend,
        mut progress: impl FnMut(&PerplexityProgress),
    ) -> Result<PerplexityOutput, PerplexityError> {
        self.params.layout()?;
        let text = match &self.task {
            PerplexityTask::Perplexity { text } | PerplexityTask::SaveKlBase { text, .. } => {
                Some(Text::from_file(text)?)
            }
            PerplexityTask::KlDivergence { .. } => None,
        };
        let model = Model::load(backend, &self.model, &self.model_params)?;
        let mut on_chunk = |c: &ChunkResult| progress(&PerplexityProgress::Chunk(*c));
        Ok(match (&self.task, text) {
            (PerplexityTask::Perplexity { .. }, Some(text)) => {
                PerplexityOutput::Perplexity(Box::new(perplexity(&model, &text, &self.params, &mut on_chunk)?))
            }
            (PerplexityTask::SaveKlBase { base, .. }, Some(text)) => {
                PerplexityOutput::Perplexity(Box::new(save_kl_base(&model, &text, &self.params, base, &mut on_chunk)?))
            }
            (PerplexityTask::KlDivergence { base }, _) => PerplexityOutput::KlDivergence(Box::new(kl_divergence(
                &model,
                base,
                &self.params,
                |c: &KlChunkResult| progress(&PerplexityProgress::KlChunk(*c)),
            )?)),
            (_, None) => unreachable!("text tasks read their text above"),
        })
    }

    /// Runs where `isolation` says: [`PerplexityJob::run`] or [`PerplexityJob::run_supervised`].
    ///
    /// # Errors
    /// As those two.
    pub fn execute(
        &self,
        backend: &Backend,
        isolation: &Isolation,
        progress: impl FnMut(&PerplexityProgress),
    ) -> Result<PerplexityOutput, SupervisedPerplexityError> {
        let (mut out, telemetry) = match isolation {
            Isolation::InProcess => {
                let recorder = crate::telemetry::Recorder::start(std::process::id(), &self.telemetry);
                recorder.begin(0);
                let out = self.run(backend, progress)?;
                (out, recorder.take(0))
            }
            Isolation::Worker(trial) => {
                let trial = TrialConfig { telemetry: self.telemetry.clone(), ..trial.clone() };
                self.supervised(&trial, progress)?
            }
        };
        out.attach_telemetry(telemetry);
        Ok(out)
    }

    /// Runs in a supervised worker process: an abort or fault in llama.cpp, or a run past
    /// `opts.timeout`, becomes [`TrialError::Crashed`] / [`TrialError::TimedOut`] with its
    /// crash report. Progress arrives as chunks are scored.
    ///
    /// # Errors
    /// [`SupervisedPerplexityError`]: bad parameters (checked here first), or the trial's error.
    pub fn run_supervised(
        &self,
        opts: &TrialConfig,
        progress: impl FnMut(&PerplexityProgress),
    ) -> Result<PerplexityOutput, SupervisedPerplexityError> {
        let (mut out, telemetry) = self.supervised(opts, progress)?;
        out.attach_telemetry(telemetry);
        Ok(out)
    }

    fn supervised(
        &self,
        opts: &TrialConfig,
        mut progress: impl FnMut(&PerplexityProgress),
    ) -> Result<(PerplexityOutput, Telemetry), SupervisedPerplexityError> {
        self.params.layout()?;
        let job = Job::Perplexity(self.clone());
        Ok(run_single_measured(&job, opts, |event| {
            if let Event::Progress { value, .. } = event {
                if let Ok(p) = serde_json::from_value::<PerplexityProgress>(value.clone()) {
                    progress(&p);
                }
            }
        })?)
    }
}

/// The worker side of [`Job::Perplexity`].
pub(crate) fn run_job(job: &PerplexityJob, emit: &Emitter) -> Result<(), String> {
    emit.phase(0, Phase::Start);
    let backend = Backend::init().map_err(|e| e.to_string())?;
    emit.phase(0, Phase::Load);
    let out = job
        .run(&backend, |p| {
            let (chunk, of) = match p {
                PerplexityProgress::Chunk(c) => (c.chunk, c.n_chunk),
                PerplexityProgress::KlChunk(c) => (c.chunk, c.n_chunk),
            };
            emit.phase(0, Phase::Chunk { chunk, of });
            emit.progress(0, p);
        })
        .map_err(|e| e.to_string())?;
    emit.output(0, &out);
    emit.phase(0, Phase::Finished);
    Ok(())
}
