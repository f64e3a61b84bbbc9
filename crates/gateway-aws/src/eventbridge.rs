//! [`Events`] on Amazon EventBridge: every event the workflows publish is put on an event bus
//! (the account's default bus unless configured otherwise) as one entry:
//!
//! | Field | Value |
//! |---|---|
//! | `source` | `mftg` |
//! | `detail-type` | the event's kind: `delivered`, `delivered-with-warning`, `sent`, `failed`, `received`, `rejected`, `duplicate`, `not-sent`, `certificate-expiring` |
//! | `resources` | the deployment's bucket, `arn:aws:s3:::<bucket>` (tells deployments sharing a bus apart) |
//! | `time` | when it happened |
//! | `detail` | the event as webhooks get it (`id`, `type`, `at`, `message` or `certificate`) |
//!
//! Publishing never fails the AS2 exchange: an entry EventBridge refuses, or a call that fails,
//! is logged with the event's id and dropped.

use aws_sdk_eventbridge::primitives::DateTime;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use gateway::events::Event;
use gateway::ports::Events;

/// The `source` of every entry.
pub const SOURCE: &str = "mftg";

/// The bus events go to when none is configured.
pub const DEFAULT_BUS: &str = "default";

/// Events put on an EventBridge bus, or (with no bus) only logged.
#[derive(Debug, Clone)]
pub struct EventBridgeEvents {
    client: aws_sdk_eventbridge::Client,
    bus: Option<String>,
    resource: String,
}

impl EventBridgeEvents {
    /// Puts events for the deployment of `bucket` on `bus` (a name or ARN); `None` publishes
    /// nothing.
    pub fn from_conf(conf: &aws_config::SdkConfig, bus: Option<&str>, bucket: &str) -> Self {
        EventBridgeEvents {
            client: aws_sdk_eventbridge::Client::new(conf),
            bus: bus.map(str::to_string),
            resource: format!("arn:aws:s3:::{bucket}"),
        }
    }

    /// The entry `event` is put as.
    fn entry(&self, bus: &str, event: &Event) -> Result<PutEventsRequestEntry, String> {
        let detail = serde_json::to_string(event).map_err(|e| e.to_string())?;
        Ok(PutEventsRequestEntry::builder()
            .event_bus_name(bus)
            .source(SOURCE)
            .detail_type(&event.kind)
            .resources(&self.resource)
            .time(DateTime::from_millis(event.at.0))
            .detail(detail)
            .build())
    }
}

impl Events for EventBridgeEvents {
    async fn publish(&self, event: Event) -> bool {
        let Some(bus) = &self.bus else {
            tracing::debug!(kind = %event.kind, "event (no bus configured)");
            return true;
        };
        let entry = match self.entry(bus, &event) {
            Ok(entry) => entry,
            Err(e) => {
                tracing::error!(event = %event.id, error = %e, "event not put on EventBridge");
                return false;
            }
        };
        match self.client.put_events().entries(entry).send().await {
            Ok(out) if out.failed_entry_count() == 0 => {
                tracing::debug!(event = %event.id, %bus, "event put on EventBridge");
                true
            }
            Ok(out) => {
                let why = out
                    .entries()
                    .iter()
                    .filter_map(|e| {
                        e.error_code()
                            .map(|c| format!("{c}: {}", e.error_message().unwrap_or_default()))
                    })
                    .collect::<Vec<_>>()
                    .join("; ");
                tracing::error!(event = %event.id, %bus, %why, "EventBridge refused the event");
                false
            }
            Err(e) => {
                let why = crate::error::describe(&e);
                tracing::error!(event = %event.id, %bus, %why, "event not put on EventBridge");
                false
            }
        }
    }

    fn keeps(&self) -> bool {
        self.bus.is_some()
    }
}
