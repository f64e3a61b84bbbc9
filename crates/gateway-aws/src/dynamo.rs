//! DynamoDB adapters: the duplicate index, the message log and the partner directory.
//!
//! Tables (names configurable; `create_tables` makes them for tests and emulators, the SAM and
//! CDK templates make them in AWS):
//!
//! - **claims** (`pk` = `<station>/<partner>/<file name>`): the upload that opened the
//!   duplicate window (`upload_id`: S3 version id, else event sequencer, else etag), its record,
//!   `accepted_at` (the upload's time) and `expires_ms` in milliseconds, and `expires_at`
//!   (epoch seconds, the table's TTL attribute) 14 days after the window's end
//!   (`ClaimRecord::KEPT`). A claim is one conditional PutItem:
//!   `attribute_not_exists(pk) OR (expires_ms <= :at AND upload_id <> :upload)`, `:at` the
//!   upload's time (`expires_ms` is the window's end fixed at
//!   acceptance, which `Claim::judge` also reads, so changing the window never makes the two
//!   disagree); when it fails,
//!   the item that stopped it comes back with the failure and the domain's `Claim::judge` says
//!   whether that is a redelivery of the same upload or a duplicate.
//! - **messages** (`pk`): message records as `rec#<id>` items (the record as JSON in `doc`,
//!   `revision` for optimistic locking, and `id`, `station`, `sp` = `<station>/<partner>`,
//!   `kind` for the indexes), plus Message-ID markers `mid#<direction>#<station>/<partner>/<id>`
//!   naming the record. An inbound record and its marker are written in one transaction, so a
//!   Message-ID is received once. Indexes (newest first by `id`, which sorts by time):
//!   `by_pair` (`sp`, `id`), `by_station` (`station`, `id`), `by_time` (`kind`, `id`).
//! - **partners** (`pk`): `station#<as2-id>` and `partnership#<station>/<partner>` items, each
//!   the JSON of the domain's `Station` or `Partnership` in `doc`.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, Put, ReturnValuesOnConditionCheckFailure,
    ScalarAttributeType, TimeToLiveSpecification, TransactWriteItem,
};
use aws_sdk_dynamodb::Client;
use gateway::layout::{Direction, SendKey};
use gateway::model::{MessageRecord, Partnership, Station};
use gateway::ports::{
    apply_update, Claim, ClaimRecord, ClaimRequest, Created, DuplicateIndex, MessageLog,
    PartnerDirectory, RecordQuery,
};
use gateway::{GatewayError, Millis, Result};

/// The tables' prefix the templates default to (`TablePrefix`).
pub const DEFAULT_TABLE_PREFIX: &str = "mftg";

/// The tables' names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tables {
    /// The duplicate index.
    pub claims: String,
    /// Message records and Message-ID markers.
    pub messages: String,
    /// Stations and partnerships.
    pub partners: String,
}

impl Tables {
    /// `<prefix>-claims`, `<prefix>-messages`, `<prefix>-partners`.
    pub fn with_prefix(prefix: &str) -> Self {
        Tables {
            claims: format!("{prefix}-claims"),
            messages: format!("{prefix}-messages"),
            partners: format!("{prefix}-partners"),
        }
    }
}

/// The gateway's DynamoDB tables.
#[derive(Debug, Clone)]
pub struct Dynamo {
    client: Client,
    tables: Tables,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn get_s<'a>(item: &'a HashMap<String, AttributeValue>, k: &str) -> Option<&'a str> {
    item.get(k).and_then(|v| v.as_s().ok()).map(String::as_str)
}

fn get_n(item: &HashMap<String, AttributeValue>, k: &str) -> Option<i64> {
    item.get(k)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

/// What to check when a table is not there.
pub const MISSING_TABLE: &str =
    "check the deployment's table prefix (the stack's TablePrefix) and region";

/// A failed call `op` on `table`: a table that is not there is named, with what to check.
fn port<E: ProvideErrorMetadata + std::error::Error + 'static>(
    op: &str,
    table: &str,
    e: &SdkError<E>,
) -> GatewayError {
    let detail = if e.code() == Some("ResourceNotFoundException") {
        format!("table {table} does not exist in this account and region: {MISSING_TABLE}")
    } else {
        crate::error::describe(e)
    };
    GatewayError::port("dynamodb", format!("{op}: {detail}"))
}

fn core(message_id: &str) -> String {
    as2::envelope::message_id_core(message_id).to_string()
}

fn marker(direction: Direction, station: &str, partner: &str, message_id: &str) -> String {
    format!(
        "mid#{}#{station}/{partner}/{}",
        direction.as_str(),
        core(message_id)
    )
}

fn record_pk(id: &str) -> String {
    format!("rec#{id}")
}

/// The JSON doc of an item. One that cannot be read is a port failure for records (`what`);
/// for a station or partnership ([`decode_setting`]) a configuration error.
fn decode_with<T: serde::de::DeserializeOwned>(
    item: &HashMap<String, AttributeValue>,
    what: &str,
    fail: fn(String) -> GatewayError,
) -> Result<T> {
    let doc = get_s(item, "doc").ok_or_else(|| fail(format!("{what}: item without doc")))?;
    serde_json::from_str(doc).map_err(|e| fail(format!("{what}: unreadable doc: {e}")))
}

fn decode<T: serde::de::DeserializeOwned>(
    item: &HashMap<String, AttributeValue>,
    what: &str,
) -> Result<T> {
    decode_with(item, what, |m| GatewayError::port("dynamodb", m))
}

/// A station or partnership item: a doc the gateway cannot use (an algorithm it does not know, a
/// misspelt field) is a configuration error naming the item, so what is sent with it fails with
/// that reason instead of being retried.
fn decode_setting<T: serde::de::DeserializeOwned>(
    item: &HashMap<String, AttributeValue>,
    what: &str,
) -> Result<T> {
    decode_with(item, what, GatewayError::Config)
}

fn encode<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| GatewayError::port("dynamodb", e))
}

impl Dynamo {
    /// The tables `tables`, through `client`.
    pub fn new(client: Client, tables: Tables) -> Self {
        Dynamo { client, tables }
    }

    /// From an SDK configuration.
    pub fn from_conf(conf: &aws_config::SdkConfig, tables: Tables) -> Self {
        Self::new(Client::new(conf), tables)
    }

    /// The table names.
    pub fn tables(&self) -> &Tables {
        &self.tables
    }

    /// The SDK client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Creates the three tables as described above (on-demand billing, TTL on the claims), for
    /// tests and local emulators.
    pub async fn create_tables(&self) -> Result<()> {
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .map_err(|e| GatewayError::port("dynamodb", e))
        };
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| GatewayError::port("dynamodb", e))
        };
        for table in [&self.tables.claims, &self.tables.partners] {
            self.client
                .create_table()
                .table_name(table)
                .billing_mode(BillingMode::PayPerRequest)
                .key_schema(key("pk", KeyType::Hash)?)
                .attribute_definitions(attr("pk")?)
                .send()
                .await
                .map_err(|e| port("CreateTable", table, &e))?;
        }
        let mut messages = self
            .client
            .create_table()
            .table_name(&self.tables.messages)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key("pk", KeyType::Hash)?);
        for a in ["pk", "id", "sp", "station", "kind"] {
            messages = messages.attribute_definitions(attr(a)?);
        }
        for (index, partition) in [
            ("by_pair", "sp"),
            ("by_station", "station"),
            ("by_time", "kind"),
        ] {
            messages = messages.global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(index)
                    .key_schema(key(partition, KeyType::Hash)?)
                    .key_schema(key("id", KeyType::Range)?)
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::All)
                            .build(),
                    )
                    .build()
                    .map_err(|e| GatewayError::port("dynamodb", e))?,
            );
        }
        messages
            .send()
            .await
            .map_err(|e| port("CreateTable", &self.tables.messages, &e))?;
        self.client
            .update_time_to_live()
            .table_name(&self.tables.claims)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name("expires_at")
                    .build()
                    .map_err(|e| GatewayError::port("dynamodb", e))?,
            )
            .send()
            .await
            .map_err(|e| port("UpdateTimeToLive", &self.tables.claims, &e))?;
        Ok(())
    }

    /// Deletes the tables that exist (tearing a deployment down; the templates keep the messages
    /// and partners tables when the stack is deleted). Returns the names deleted.
    pub async fn delete_tables(&self) -> Result<Vec<String>> {
        let mut deleted = Vec::new();
        for table in [
            &self.tables.claims,
            &self.tables.messages,
            &self.tables.partners,
        ] {
            match self.client.delete_table().table_name(table).send().await {
                Ok(_) => deleted.push(table.clone()),
                Err(e) if e.code() == Some("ResourceNotFoundException") => {}
                Err(e) => return Err(port("DeleteTable", table, &e)),
            }
        }
        Ok(deleted)
    }

    /// Adds or replaces a station.
    pub async fn put_station(&self, station: &Station) -> Result<()> {
        self.client
            .put_item()
            .table_name(&self.tables.partners)
            .item("pk", s(format!("station#{}", station.as2_id)))
            .item("doc", s(encode(station)?))
            .send()
            .await
            .map_err(|e| port("PutItem", &self.tables.partners, &e))?;
        Ok(())
    }

    /// Adds or replaces a partnership.
    pub async fn put_partnership(&self, p: &Partnership) -> Result<()> {
        self.client
            .put_item()
            .table_name(&self.tables.partners)
            .item("pk", s(format!("partnership#{}/{}", p.station, p.partner)))
            .item("doc", s(encode(p)?))
            .send()
            .await
            .map_err(|e| port("PutItem", &self.tables.partners, &e))?;
        Ok(())
    }

    /// Every station, by AS2 ID.
    pub async fn stations(&self) -> Result<Vec<Station>> {
        let mut out: Vec<Station> = self
            .scan_settings("station#")
            .await?
            .iter()
            .map(|(pk, item)| decode_setting(item, pk))
            .collect::<Result<_>>()?;
        out.sort_by(|a, b| a.as2_id.cmp(&b.as2_id));
        Ok(out)
    }

    /// Every partnership, by station and partner.
    pub async fn partnerships(&self) -> Result<Vec<Partnership>> {
        let mut out: Vec<Partnership> = self
            .scan_settings("partnership#")
            .await?
            .iter()
            .map(|(pk, item)| decode_setting(item, pk))
            .collect::<Result<_>>()?;
        out.sort_by(|a, b| (&a.station, &a.partner).cmp(&(&b.station, &b.partner)));
        Ok(out)
    }

    /// Removes a station (nothing if there is none).
    pub async fn delete_station(&self, as2_id: &str) -> Result<()> {
        self.delete_setting(&format!("station#{as2_id}")).await
    }

    /// Removes a partnership (nothing if there is none).
    pub async fn delete_partnership(&self, station: &str, partner: &str) -> Result<()> {
        self.delete_setting(&format!("partnership#{station}/{partner}"))
            .await
    }

    async fn delete_setting(&self, pk: &str) -> Result<()> {
        self.client
            .delete_item()
            .table_name(&self.tables.partners)
            .key("pk", s(pk))
            .send()
            .await
            .map_err(|e| port("DeleteItem", &self.tables.partners, &e))?;
        Ok(())
    }

    /// The partners table's items whose key starts with `prefix` (the table holds a few items
    /// per partner, so a scan is what reads them all).
    async fn scan_settings(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, HashMap<String, AttributeValue>)>> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.tables.partners)
                .filter_expression("begins_with(pk, :p)")
                .expression_attribute_values(":p", s(prefix))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| port("Scan", &self.tables.partners, &e))?;
            for item in page.items.unwrap_or_default() {
                let pk = get_s(&item, "pk").unwrap_or_default().to_string();
                out.push((pk, item));
            }
            start = page.last_evaluated_key.filter(|k| !k.is_empty());
            if start.is_none() {
                return Ok(out);
            }
        }
    }

    async fn get_item(
        &self,
        table: &str,
        pk: &str,
    ) -> Result<Option<HashMap<String, AttributeValue>>> {
        let out = self
            .client
            .get_item()
            .table_name(table)
            .key("pk", s(pk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| port("GetItem", table, &e))?;
        Ok(out.item)
    }

    fn record_item(
        &self,
        record: &MessageRecord,
        condition: &str,
        value: Option<(&str, AttributeValue)>,
    ) -> Result<Put> {
        Put::builder()
            .table_name(&self.tables.messages)
            .item("pk", s(record_pk(&record.id)))
            .item("id", s(&record.id))
            .item("kind", s("record"))
            .item("station", s(&record.station))
            .item("partner", s(&record.partner))
            .item("sp", s(format!("{}/{}", record.station, record.partner)))
            .item("direction", s(record.direction.as_str()))
            .item("message_id", s(core(&record.message_id)))
            .item("status", s(record.status.as_str()))
            .item("revision", n(record.revision))
            .item("doc", s(encode(record)?))
            .condition_expression(condition)
            .set_expression_attribute_values(
                value.map(|(k, v)| HashMap::from([(k.to_string(), v)])),
            )
            .build()
            .map_err(|e| GatewayError::port("dynamodb", e))
    }

    fn marker_item(&self, record: &MessageRecord, condition: Option<&str>) -> Result<Put> {
        Put::builder()
            .table_name(&self.tables.messages)
            .item(
                "pk",
                s(marker(
                    record.direction,
                    &record.station,
                    &record.partner,
                    &record.message_id,
                )),
            )
            .item("record_id", s(&record.id))
            .set_condition_expression(condition.map(str::to_string))
            .build()
            .map_err(|e| GatewayError::port("dynamodb", e))
    }

    /// Writes `record` (the condition guards it) and, if `with_marker`, its Message-ID marker
    /// (under `marker_condition`) in one transaction. `Ok(false)` if a condition failed.
    async fn write_record(
        &self,
        record: &MessageRecord,
        condition: (&str, Option<(&str, AttributeValue)>),
        with_marker: Option<Option<&str>>,
    ) -> Result<bool> {
        let put = self.record_item(record, condition.0, condition.1)?;
        let Some(marker_condition) = with_marker else {
            let req = self
                .client
                .put_item()
                .table_name(&self.tables.messages)
                .set_item(Some(put.item))
                .set_condition_expression(put.condition_expression)
                .set_expression_attribute_values(put.expression_attribute_values);
            return match req.send().await {
                Ok(_) => Ok(true),
                Err(SdkError::ServiceError(e))
                    if matches!(e.err(), PutItemError::ConditionalCheckFailedException(_)) =>
                {
                    Ok(false)
                }
                Err(e) => Err(port("PutItem", &self.tables.messages, &e)),
            };
        };
        let marker = self.marker_item(record, marker_condition)?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put).build())
            .transact_items(TransactWriteItem::builder().put(marker).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("TransactionCanceledException") => {
                let reasons = match &e {
                    SdkError::ServiceError(se) => match se.err() {
                        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(t) => t
                            .cancellation_reasons()
                            .iter()
                            .map(|r| r.code().unwrap_or("").to_string())
                            .collect::<Vec<_>>(),
                        _ => Vec::new(),
                    },
                    _ => Vec::new(),
                };
                if reasons.iter().any(|c| c == "ConditionalCheckFailed") || reasons.is_empty() {
                    Ok(false)
                } else {
                    Err(port("TransactWriteItems", &self.tables.messages, &e))
                }
            }
            Err(e) => Err(port("TransactWriteItems", &self.tables.messages, &e)),
        }
    }

    /// Queries `index` for `partition`, newest first, a page at a time from the query's cursor;
    /// the partner is filtered by DynamoDB, every filter decided by [`RecordQuery::matches`].
    async fn query_records(
        &self,
        index: &str,
        partition: (&str, String),
        query: &RecordQuery,
    ) -> Result<Vec<MessageRecord>> {
        let mut out = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        let condition = match query.before {
            Some(_) => "#p = :p AND id < :before",
            None => "#p = :p",
        };
        // Bounded: each page holds up to `limit` items, and filters may need several.
        for _ in 0..1000 {
            let mut q = self
                .client
                .query()
                .table_name(&self.tables.messages)
                .index_name(index)
                .key_condition_expression(condition)
                .expression_attribute_names("#p", partition.0)
                .expression_attribute_values(":p", s(&partition.1))
                .scan_index_forward(false)
                .limit(query.limit.clamp(1, 1000) as i32)
                .set_exclusive_start_key(start.take());
            if let Some(b) = &query.before {
                q = q.expression_attribute_values(":before", s(b));
            }
            if let (Some(p), "by_time") = (&query.partner, index) {
                q = q
                    .filter_expression("partner = :partner")
                    .expression_attribute_values(":partner", s(p));
            }
            let page = q
                .send()
                .await
                .map_err(|e| port("Query", &self.tables.messages, &e))?;
            for item in page.items() {
                let record: MessageRecord = decode(item, "message record")?;
                if out.len() < query.limit && query.matches(&record) {
                    out.push(record);
                }
            }
            start = page.last_evaluated_key;
            if out.len() >= query.limit || start.is_none() {
                break;
            }
        }
        Ok(out)
    }
}

impl DuplicateIndex for Dynamo {
    async fn claim(&self, send: &SendKey, request: &ClaimRequest<'_>) -> Result<Claim> {
        let SendKey {
            station,
            partner,
            name,
        } = send;
        let pk = format!("{station}/{partner}/{name}");
        let c = request.accepted();
        let expires_ms = c.window_ends.0;
        // A claim that fails when the item that stopped it is gone by the time we read it is
        // tried again; twice more is plenty (it takes a window's end racing a write).
        for _ in 0..3 {
            let put = self
                .client
                .put_item()
                .table_name(&self.tables.claims)
                .item("pk", s(&pk))
                .item("station", s(station))
                .item("partner", s(partner))
                .item("name", s(name))
                .item("upload_id", s(&c.upload_id))
                .item("record_id", s(&c.record_id))
                .item("accepted_at", n(c.accepted_at.0))
                .item("expires_ms", n(expires_ms))
                .item("expires_at", n(c.kept_until().0.div_euclid(1000) + 1))
                .condition_expression(
                    "attribute_not_exists(pk) OR (expires_ms <= :at AND upload_id <> :upload)",
                )
                .expression_attribute_values(":at", n(c.accepted_at.0))
                .expression_attribute_values(":upload", s(&c.upload_id))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            let existing = match put {
                Ok(_) => return Ok(Claim::Accepted),
                Err(SdkError::ServiceError(e))
                    if matches!(e.err(), PutItemError::ConditionalCheckFailedException(_)) =>
                {
                    match e.err() {
                        PutItemError::ConditionalCheckFailedException(c) if c.item().is_some() => {
                            c.item().cloned()
                        }
                        _ => self.get_item(&self.tables.claims, &pk).await?,
                    }
                }
                Err(e) => return Err(port("PutItem", &self.tables.claims, &e)),
            };
            let existing = existing.map(|item| ClaimRecord {
                upload_id: get_s(&item, "upload_id").unwrap_or_default().to_string(),
                record_id: get_s(&item, "record_id").unwrap_or_default().to_string(),
                accepted_at: Millis(get_n(&item, "accepted_at").unwrap_or_default()),
                window_ends: Millis(get_n(&item, "expires_ms").unwrap_or_default()),
            });
            let claim = Claim::judge(existing.as_ref(), request);
            if claim != Claim::Accepted {
                return Ok(claim);
            }
        }
        Err(GatewayError::Conflict(format!(
            "the duplicate-window claim for {pk} kept changing"
        )))
    }
}

impl MessageLog for Dynamo {
    async fn create(&self, record: &MessageRecord) -> Result<Created> {
        let has_mid = !core(&record.message_id).is_empty();
        // An inbound Message-ID is received once: its marker must be new. An outbound one just
        // points at its record.
        let with_marker = match (record.direction, has_mid) {
            (Direction::Inbox, true) => Some(Some("attribute_not_exists(pk)")),
            (Direction::Outbox, true) => Some(None),
            _ => None,
        };
        if self
            .write_record(record, ("attribute_not_exists(pk)", None), with_marker)
            .await?
        {
            return Ok(Created::New);
        }
        if let Some(existing) = self.get(&record.id).await? {
            return Ok(Created::Exists(Box::new(existing)));
        }
        if record.direction == Direction::Inbox && has_mid {
            let pk = marker(
                Direction::Inbox,
                &record.station,
                &record.partner,
                &record.message_id,
            );
            if let Some(m) = self.get_item(&self.tables.messages, &pk).await? {
                if let Some(existing) = self.get(get_s(&m, "record_id").unwrap_or("")).await? {
                    return Ok(Created::Exists(Box::new(existing)));
                }
            }
        }
        Err(GatewayError::Conflict(format!(
            "record {} could not be created, and no earlier record is there",
            record.id
        )))
    }

    async fn get(&self, id: &str) -> Result<Option<MessageRecord>> {
        self.get_item(&self.tables.messages, &record_pk(id))
            .await?
            .map(|item| decode(&item, "message record"))
            .transpose()
    }

    async fn update(&self, record: &mut MessageRecord) -> Result<()> {
        let next = record.next_revision();
        let with_marker = (next.direction == Direction::Outbox
            && !core(&next.message_id).is_empty())
        .then_some(None);
        let written = self
            .write_record(
                &next,
                ("revision = :rev", Some((":rev", n(record.revision)))),
                with_marker,
            )
            .await?;
        apply_update(record, next, written)
    }

    async fn find_outbound(
        &self,
        station: &str,
        partner: &str,
        message_id: &str,
    ) -> Result<Option<MessageRecord>> {
        let pk = marker(Direction::Outbox, station, partner, message_id);
        let Some(m) = self.get_item(&self.tables.messages, &pk).await? else {
            return Ok(None);
        };
        let record = self.get(get_s(&m, "record_id").unwrap_or("")).await?;
        Ok(record.filter(|r| core(&r.message_id) == core(message_id)))
    }

    async fn query(&self, query: &RecordQuery) -> Result<Vec<MessageRecord>> {
        match (&query.station, &query.partner) {
            (Some(st), Some(pa)) => {
                self.query_records("by_pair", ("sp", format!("{st}/{pa}")), query)
                    .await
            }
            (Some(st), None) => {
                self.query_records("by_station", ("station", st.clone()), query)
                    .await
            }
            (None, _) => {
                self.query_records("by_time", ("kind", "record".into()), query)
                    .await
            }
        }
    }
}

impl PartnerDirectory for Dynamo {
    async fn station(&self, as2_id: &str) -> Result<Option<Station>> {
        self.get_item(&self.tables.partners, &format!("station#{as2_id}"))
            .await?
            .map(|item| decode_setting(&item, &format!("station {as2_id}")))
            .transpose()
    }

    async fn partnership(&self, station: &str, partner: &str) -> Result<Option<Partnership>> {
        self.get_item(
            &self.tables.partners,
            &format!("partnership#{station}/{partner}"),
        )
        .await?
        .map(|item| decode_setting(&item, &format!("partnership {station} -> {partner}")))
        .transpose()
    }
}
