//! Scraping the server's Prometheus `/metrics` while a replay runs: at the start, every
//! interval, and at the end. A failed scrape is a recorded failure, never the run's end.

use super::client::{Client, Origin};
use super::{client_for, HttpError, HttpTargetConfig};
use crate::telemetry::prometheus::{Exposition, Scrapes, ServerMetrics};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where and how often to scrape.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ScrapeConfig {
    /// The metrics URL; `None`: `/metrics` at the server's root (llama-server needs `--metrics`,
    /// vLLM serves it always).
    pub url: Option<String>,
    /// Time between scrapes during the run.
    #[serde(with = "crate::serde_duration::secs")]
    pub interval: Duration,
}

impl Default for ScrapeConfig {
    fn default() -> Self {
        ScrapeConfig { url: None, interval: Duration::from_secs(1) }
    }
}

/// Gauges that say the server still has requests running: its counters are not final yet.
const BUSY_GAUGES: [&str; 2] = ["llamacpp:requests_processing", "vllm:num_requests_running"];
/// Largest metrics body read.
const MAX_BODY: usize = 16 << 20;

/// A scraper of one server's metrics.
pub(crate) struct Scraper {
    client: Arc<Client>,
    url: String,
    interval: Duration,
}

impl Scraper {
    /// A scraper for the target's server, with its key and TLS settings.
    pub(crate) fn new(target: &HttpTargetConfig, config: &ScrapeConfig) -> Result<Scraper, HttpError> {
        let url = match &config.url {
            Some(u) => u.clone(),
            None => {
                let root = target.base_url.trim_end_matches('/');
                format!("{}/metrics", root.strip_suffix("/v1").unwrap_or(root))
            }
        };
        let origin = Origin::parse(&url).map_err(|detail| HttpError::InvalidBaseUrl { url: url.clone(), detail })?;
        let client = Arc::new(client_for(origin, target)?);
        Ok(Scraper { client, url, interval: config.interval.max(Duration::from_millis(10)) })
    }

    async fn once(client: &Client) -> Result<String, String> {
        let mut resp = client.get().await.map_err(|e| e.detail)?;
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| e.detail)? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(format!("metrics body over {MAX_BODY} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        let text = String::from_utf8_lossy(&body).into_owned();
        if !resp.status.is_success() {
            let excerpt: String = text.chars().take(200).collect();
            return Err(format!("HTTP {}: {}", resp.status.as_u16(), excerpt.trim()));
        }
        Ok(text)
    }

    /// Scrapes now and every interval until the returned handle is finished.
    pub(crate) async fn start(self) -> RunningScrape {
        let t0 = Instant::now();
        let scrapes = Arc::new(Mutex::new(Scrapes::default()));
        let first = Self::once(&self.client).await;
        scrapes.lock().unwrap_or_else(|e| e.into_inner()).push(0.0, first);
        let (client, shared, interval) = (self.client.clone(), scrapes.clone(), self.interval);
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tick.tick().await;
                let r = Self::once(&client).await;
                shared.lock().unwrap_or_else(|e| e.into_inner()).push(t0.elapsed().as_secs_f64(), r);
            }
        });
        RunningScrape { scraper: self, t0, scrapes, task }
    }
}

/// Scrapes in progress.
pub(crate) struct RunningScrape {
    scraper: Scraper,
    t0: Instant,
    scrapes: Arc<Mutex<Scrapes>>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningScrape {
    /// The last scrape (repeated for up to a second while the server still reports requests
    /// running: it counts a request's tokens after the response ends), and the run's metrics.
    pub(crate) async fn finish(self) -> ServerMetrics {
        self.task.abort();
        let mut last = Scraper::once(&self.scraper.client).await;
        for _ in 0..10 {
            if !matches!(&last, Ok(text) if busy(text)) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            last = Scraper::once(&self.scraper.client).await;
        }
        let mut scrapes = std::mem::take(&mut *self.scrapes.lock().unwrap_or_else(|e| e.into_inner()));
        scrapes.push(self.t0.elapsed().as_secs_f64(), last);
        scrapes.finish(&self.scraper.url)
    }
}

fn busy(text: &str) -> bool {
    let e = Exposition::parse(text);
    e.values.iter().any(|(k, v)| *v > 0.0 && BUSY_GAUGES.iter().any(|g| k.split('{').next() == Some(g)))
}
