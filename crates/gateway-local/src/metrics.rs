//! The running gateway's metrics, in the Prometheus project's own client: messages by station,
//! partner, direction and final status; seconds from a message's first status to its final one;
//! the job queue's depth and the jobs set aside; each certificate's days to expiry. The message
//! figures are counted as the gateway's events happen (from the start of the process, as
//! Prometheus expects of counters); the others are read when scraped.

use std::sync::{Arc, Mutex};

use gateway::events::Event;
use gateway::model::Certificate;
use gateway::ports::Events;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// The labels of a message's figures.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MessageLabels {
    station: String,
    partner: String,
    direction: String,
    status: String,
}

/// The labels of the latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LatencyLabels {
    station: String,
    partner: String,
    direction: String,
}

/// The labels of a certificate's gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CertificateLabels {
    kind: String,
    owner: String,
    alias: String,
}

/// The figures, shared by the gateway (which counts) and the console (which serves them).
pub struct Metrics {
    registry: Registry,
    messages: Family<MessageLabels, Counter>,
    seconds: Family<LatencyLabels, Histogram>,
    queued: Gauge,
    parked: Gauge,
    certificates: Family<CertificateLabels, Gauge>,
    /// One scrape at a time sets the gauges and encodes.
    scrape: Mutex<()>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics { .. }")
    }
}

/// The content type of [`Metrics::encode`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

impl Metrics {
    /// Figures at zero.
    pub fn new() -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("mftg");
        let messages = Family::<MessageLabels, Counter>::default();
        registry.register(
            "messages",
            "Messages that reached a final status, by station, partner, direction and status",
            messages.clone(),
        );
        let seconds = Family::<LatencyLabels, Histogram>::new_with_constructor(|| {
            // 10 ms to about 45 minutes
            Histogram::new(exponential_buckets(0.01, 2.0, 19))
        });
        registry.register(
            "message_seconds",
            "Seconds from a message's first status (upload or receipt) to its final one",
            seconds.clone(),
        );
        let queued = Gauge::default();
        registry.register(
            "queue_jobs",
            "Jobs waiting in the queue or running",
            queued.clone(),
        );
        let parked = Gauge::default();
        registry.register(
            "parked_jobs",
            "Jobs set aside for an operator (failed for good or too often)",
            parked.clone(),
        );
        let certificates = Family::<CertificateLabels, Gauge>::default();
        registry.register(
            "certificate_days_left",
            "Whole days until a station's or partner's certificate expires (negative once past)",
            certificates.clone(),
        );
        Arc::new(Metrics {
            registry,
            messages,
            seconds,
            queued,
            parked,
            certificates,
            scrape: Mutex::new(()),
        })
    }

    /// Counts `event` (a message's final status; other events are not counted).
    pub fn count(&self, event: &Event) {
        let Some(m) = &event.message else { return };
        let direction = m.direction.as_str().to_string();
        self.messages
            .get_or_create(&MessageLabels {
                station: m.station.clone(),
                partner: m.partner.clone(),
                direction: direction.clone(),
                status: m.status.as_str().to_string(),
            })
            .inc();
        self.seconds
            .get_or_create(&LatencyLabels {
                station: m.station.clone(),
                partner: m.partner.clone(),
                direction,
            })
            .observe(m.millis as f64 / 1000.0);
    }

    /// The figures in the OpenMetrics text format, the gauges set to what the caller read now.
    pub fn encode(&self, queued: u64, parked: u64, certificates: &[Certificate]) -> String {
        let _one = self.scrape.lock().unwrap_or_else(|p| p.into_inner());
        self.queued.set(i64::try_from(queued).unwrap_or(i64::MAX));
        self.parked.set(i64::try_from(parked).unwrap_or(i64::MAX));
        self.certificates.clear();
        for c in certificates {
            let Some(days) = c.days_left else { continue };
            self.certificates
                .get_or_create(&CertificateLabels {
                    kind: c.kind.as_str().to_string(),
                    owner: c.owner.clone(),
                    alias: c.alias.clone(),
                })
                .set(days);
        }
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "metrics could not be encoded");
        }
        out
    }
}

/// The embedded gateway's events: counted in its metrics.
#[derive(Debug, Clone)]
pub struct LocalEvents {
    metrics: Arc<Metrics>,
}

impl LocalEvents {
    /// Events counted in `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        LocalEvents { metrics }
    }

    /// The figures they are counted in.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }
}

impl Events for LocalEvents {
    async fn publish(&self, event: Event) -> bool {
        self.metrics.count(&event);
        true
    }

    fn keeps(&self) -> bool {
        false
    }
}
