//! The embedded database (SQLite, WAL): duplicate index, message log and job queue. Several
//! processes may open it (the server and `mftg messages` at once); every rule that must be atomic
//! is one transaction.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::blocking;
use gateway::layout::SendKey;
use gateway::model::{Job, MessageRecord};
use gateway::ports::{
    apply_update, Claim, ClaimRecord, ClaimRequest, Created, DuplicateIndex, JobQueue, MessageLog,
    RecordQuery,
};
use gateway::{GatewayError, Millis, Result};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

fn err(e: impl std::fmt::Display) -> GatewayError {
    GatewayError::port("database", e)
}

fn core(message_id: &str) -> String {
    as2::envelope::message_id_core(message_id).to_string()
}

/// Databases made before claims kept their window's end: their claims get the default window
/// (the only window there was until it became a setting).
fn add_window_ends(conn: &Connection) -> Result<()> {
    let has = conn
        .prepare_cached("SELECT 1 FROM pragma_table_info('claims') WHERE name = 'window_ends'")
        .and_then(|mut s| s.exists([]))
        .map_err(err)?;
    if !has {
        let window = gateway::DEFAULT_DUPLICATE_WINDOW.as_millis() as i64;
        conn.execute_batch(&format!(
            "ALTER TABLE claims ADD COLUMN window_ends INTEGER NOT NULL DEFAULT 0;
             UPDATE claims SET window_ends = accepted_at + {window};"
        ))
        .map_err(err)?;
    }
    Ok(())
}

/// Statements kept prepared, each parsed once per connection instead of on every call (parsing
/// was a sixth of the sender's CPU in a burst of small files).
trait Cached {
    fn exec<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
    fn row<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>;
}

impl Cached for Connection {
    fn exec<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    fn row<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    {
        self.prepare_cached(sql)?.query_row(params, f)
    }
}

/// Jobs get `parked` (why) and `parked_at` (when), for jobs set aside, and `runs`, how often a
/// job failed for a passing reason (databases made before parking existed).
fn add_parking(conn: &Connection) -> Result<()> {
    let has = conn
        .prepare_cached("SELECT 1 FROM pragma_table_info('jobs') WHERE name = 'parked'")
        .and_then(|mut s| s.exists([]))
        .map_err(err)?;
    if !has {
        conn.execute_batch(
            "ALTER TABLE jobs ADD COLUMN parked TEXT;
             ALTER TABLE jobs ADD COLUMN parked_at INTEGER;
             ALTER TABLE jobs ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;",
        )
        .map_err(err)?;
    }
    Ok(())
}

/// SQL for the `station/partner` of the record whose id `$id` (an SQL expression) gives, or
/// empty when there is no such record: one spelling for queueing a job and for filling in the
/// jobs of an older database.
macro_rules! pair_of_record {
    ($id:literal) => {
        concat!(
            "COALESCE((SELECT station || '/' || partner FROM records WHERE id = ",
            $id,
            "), '')"
        )
    };
}

/// Gives each job the partnership (`station/partner`) of its message, read once when it is
/// queued rather than looked up whenever due jobs are taken; jobs queued before this column
/// existed get theirs here (a webhook post's JSON has no top-level `id`: it gets none, as
/// [`job_pair`] says). The index orders each partnership's jobs as taking due jobs reads them
/// (oldest first), and replaces those on `due` alone and on `(due, pair, leased_until)`, which
/// nothing reads any more.
fn add_job_pairs(conn: &Connection) -> Result<()> {
    let has = conn
        .prepare_cached("SELECT 1 FROM pragma_table_info('jobs') WHERE name = 'pair'")
        .and_then(|mut s| s.exists([]))
        .map_err(err)?;
    if !has {
        conn.execute_batch(concat!(
            "BEGIN IMMEDIATE;
             ALTER TABLE jobs ADD COLUMN pair TEXT NOT NULL DEFAULT '';
             UPDATE jobs SET pair = ",
            pair_of_record!(
                "CASE WHEN json_valid(jobs.json) THEN json_extract(jobs.json, '$.id') END"
            ),
            ";
             COMMIT;"
        ))
        .map_err(err)?;
    }
    conn.execute_batch(
        "CREATE INDEX IF NOT EXISTS jobs_by_pair ON jobs (pair, due, seq) WHERE parked IS NULL;
         DROP INDEX IF EXISTS jobs_ready;
         DROP INDEX IF EXISTS jobs_due;",
    )
    .map_err(err)
}

/// The partnerships with jobs not parked, one index seek each (SQLite skips no keys itself).
const JOB_PAIRS: &str = "WITH RECURSIVE pairs(p) AS (
         SELECT (SELECT pair FROM jobs INDEXED BY jobs_by_pair
                 WHERE parked IS NULL ORDER BY pair LIMIT 1)
         UNION ALL
         SELECT (SELECT pair FROM jobs INDEXED BY jobs_by_pair
                 WHERE parked IS NULL AND pair > p ORDER BY pair LIMIT 1)
         FROM pairs WHERE p IS NOT NULL)
     SELECT p FROM pairs WHERE p IS NOT NULL";

/// A partnership's jobs due and not leased, oldest first, in the index's own order (no sort:
/// reading stops at what is taken).
const DUE_OF_PAIR: &str = "SELECT seq, json, due FROM jobs INDEXED BY jobs_by_pair
     WHERE pair = ?1 AND parked IS NULL AND due <= ?2
       AND (leased_until IS NULL OR leased_until < ?2)
     ORDER BY due, seq";

/// The record whose partnership a job counts against: that of the message it sends, answers
/// or waits for. A webhook's post counts against none, so a partner that never answers does
/// not hold up the posts telling of it.
fn job_pair(job: &Job) -> Option<&str> {
    match job {
        Job::Notify { .. } => None,
        other => Some(other.record_id()),
    }
}

/// A job that failed this many times in a row for a passing reason is parked (as SQS moves a
/// message to the dead-letter queue after its receive count).
pub const FAILURES_BEFORE_PARKING: u32 = 10;

/// A job taken from the queue, to be acknowledged once done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leased {
    /// Its queue position.
    pub seq: i64,
    /// What to do.
    pub job: Job,
    /// `station/partner` of the message it is for (empty when there is no such message).
    pub pair: String,
}

/// The SQLite database.
#[derive(Debug, Clone)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
}

impl Db {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        use std::os::unix::fs::PermissionsExt as _;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
            // The gateway's own folder: the database, the objects' metadata. Not for others.
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(err)?;
        }
        if !path.exists() {
            std::fs::File::create(path).map_err(err)?;
        }
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(err)?;
        conn.set_prepared_statement_cache_capacity(64);
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             CREATE TABLE IF NOT EXISTS claims (
                 station TEXT NOT NULL, partner TEXT NOT NULL, name TEXT NOT NULL,
                 upload_id TEXT NOT NULL, record_id TEXT NOT NULL, accepted_at INTEGER NOT NULL,
                 window_ends INTEGER NOT NULL,
                 PRIMARY KEY (station, partner, name));
             CREATE TABLE IF NOT EXISTS records (
                 id TEXT PRIMARY KEY, direction TEXT NOT NULL, station TEXT NOT NULL,
                 partner TEXT NOT NULL, message_id TEXT NOT NULL, revision INTEGER NOT NULL,
                 json TEXT NOT NULL);
             CREATE UNIQUE INDEX IF NOT EXISTS inbound_message_id
                 ON records (station, partner, message_id) WHERE direction = 'inbox' AND message_id != '';
             CREATE INDEX IF NOT EXISTS outbound_message_id
                 ON records (station, partner, message_id) WHERE direction = 'outbox';
             CREATE TABLE IF NOT EXISTS jobs (
                 seq INTEGER PRIMARY KEY AUTOINCREMENT, due INTEGER NOT NULL,
                 leased_until INTEGER, json TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS announced (
                 event TEXT NOT NULL, webhook TEXT NOT NULL, at INTEGER NOT NULL,
                 PRIMARY KEY (event, webhook));
             CREATE TABLE IF NOT EXISTS runs (
                 id INTEGER PRIMARY KEY CHECK (id = 1), started_at INTEGER NOT NULL,
                 webhooks TEXT NOT NULL);",
        )
        .map_err(err)?;
        add_window_ends(&conn)?;
        add_parking(&conn)?;
        add_job_pairs(&conn)?;
        Ok(Db {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// [`Db::take_due_now`], off the async workers, for any partnership (the tests' shorthand).
    #[cfg(test)]
    pub async fn take_due(&self, now: Millis, lease: Duration, max: usize) -> Result<Vec<Leased>> {
        self.take_due_for(now, lease, max, usize::MAX, HashMap::new())
            .await
    }

    /// [`Db::take_due_now`], off the async workers.
    pub async fn take_due_for(
        &self,
        now: Millis,
        lease: Duration,
        max: usize,
        per_pair: usize,
        busy: HashMap<String, usize>,
    ) -> Result<Vec<Leased>> {
        blocking::run(self, "database", move |db: &Db| {
            db.take_due_now(now, lease, max, per_pair, &busy)
        })
        .await
    }

    /// [`Db::reset_leases_now`], off the async workers.
    pub async fn reset_leases(&self) -> Result<usize> {
        blocking::run(self, "database", move |db: &Db| db.reset_leases_now()).await
    }

    /// [`Db::ack_now`], off the async workers.
    pub async fn ack(&self, seq: i64) -> Result<()> {
        blocking::run(self, "database", move |db: &Db| db.ack_now(seq)).await
    }

    /// [`Db::park_now`], off the async workers.
    pub async fn park(&self, seq: i64, reason: String, at: Millis) -> Result<()> {
        blocking::run(self, "database", move |db: &Db| {
            db.park_now(seq, &reason, at)
        })
        .await
    }

    /// [`Db::fail_now`], off the async workers.
    pub async fn fail(
        &self,
        seq: i64,
        error: String,
        now: Millis,
        retry: Duration,
    ) -> Result<bool> {
        blocking::run(self, "database", move |db: &Db| {
            db.fail_now(seq, &error, now, retry)
        })
        .await
    }

    /// [`Db::parked_now`], off the async workers.
    pub async fn parked(&self) -> Result<Vec<gateway::ports::ParkedJob>> {
        blocking::run(self, "database", move |db: &Db| db.parked_now()).await
    }

    /// How many jobs wait in the queue (or run), and how many are parked.
    pub async fn job_counts(&self) -> Result<(u64, u64)> {
        blocking::run(self, "database", move |db: &Db| {
            let conn = db.conn();
            conn.query_row(
                "SELECT COUNT(*) FILTER (WHERE parked IS NULL), COUNT(*) FILTER (WHERE parked IS NOT NULL) FROM jobs",
                [],
                |r| Ok((r.get::<_, i64>(0)?.max(0) as u64, r.get::<_, i64>(1)?.max(0) as u64)),
            )
            .map_err(err)
        })
        .await
    }

    /// [`Db::redrive_now`], off the async workers.
    pub async fn redrive(&self, seq: Option<i64>, now: Millis) -> Result<usize> {
        blocking::run(self, "database", move |db: &Db| db.redrive_now(seq, now)).await
    }

    /// Sets a job aside with the reason: it is not run again until it is redriven.
    fn park_now(&self, seq: i64, reason: &str, at: Millis) -> Result<()> {
        self.conn()
            .exec(
                "UPDATE jobs SET leased_until = NULL, parked = ?1, parked_at = ?2 WHERE seq = ?3",
                params![reason, at.0, seq],
            )
            .map_err(err)?;
        Ok(())
    }

    /// A job failed for a passing reason at `now`: it runs again `retry` later, or, after
    /// [`FAILURES_BEFORE_PARKING`] failures in a row, is parked. Returns whether it was parked.
    fn fail_now(&self, seq: i64, error: &str, now: Millis, retry: Duration) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(err)?;
        let failures: i64 = tx
            .row(
                "UPDATE jobs SET failures = failures + 1, leased_until = NULL, due = ?1
                 WHERE seq = ?2 RETURNING failures",
                params![now.plus(retry).0, seq],
                |r| r.get(0),
            )
            .map_err(err)?;
        let park = failures >= i64::from(FAILURES_BEFORE_PARKING);
        if park {
            tx.exec(
                "UPDATE jobs SET parked = ?1, parked_at = ?2 WHERE seq = ?3",
                params![
                    format!("failed {failures} times in a row; the last: {error}"),
                    now.0,
                    seq
                ],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok(park)
    }

    /// The parked jobs, oldest first.
    fn parked_now(&self) -> Result<Vec<gateway::ports::ParkedJob>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT seq, json, parked, parked_at, failures FROM jobs
                 WHERE parked IS NOT NULL ORDER BY parked_at, seq",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })
            .map_err(err)?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, json, reason, at, failures) = row.map_err(err)?;
            let job = serde_json::from_str(&json).ok();
            out.push(gateway::ports::ParkedJob {
                id: seq.to_string(),
                body: if job.is_none() { Some(json) } else { None },
                job,
                reason: Some(reason),
                parked_at: at.map(Millis),
                runs: Some(failures as u32 + 1),
            });
        }
        Ok(out)
    }

    /// Puts parked jobs (all, or the one `seq`) back in the queue, due now; returns how many.
    fn redrive_now(&self, seq: Option<i64>, now: Millis) -> Result<usize> {
        let sql = "UPDATE jobs SET parked = NULL, parked_at = NULL, failures = 0, due = ?1,
                   leased_until = NULL WHERE parked IS NOT NULL AND (?2 IS NULL OR seq = ?2)";
        self.conn().exec(sql, params![now.0, seq]).map_err(err)
    }

    /// [`Db::unfinished_receives_now`], off the async workers.
    pub async fn unfinished_receives(&self) -> Result<Vec<String>> {
        blocking::run(self, "database", move |db: &Db| {
            db.unfinished_receives_now()
        })
        .await
    }

    /// Takes up to `max` jobs due at `now`, leasing them for `lease`: a job whose worker dies is
    /// handed out again when its lease runs out, so nothing queued is lost across a crash. Jobs
    /// go oldest first, and at most `per_pair` for any one partnership counting the `busy` ones
    /// it has running already: the others stay where they are in the queue, in their order, and
    /// are not leased (so nothing is taken only to be put back).
    fn take_due_now(
        &self,
        now: Millis,
        lease: Duration,
        max: usize,
        per_pair: usize,
        busy: &HashMap<String, usize>,
    ) -> Result<Vec<Leased>> {
        let mut conn = self.conn();
        // Each partnership's first due jobs, as many as it has room for, read in its own order
        // from the index and no further: the cost is what is taken, not the backlog (a scan in
        // global order reads past every job of a partnership at its limit, on every take). The
        // oldest `max` of those are then taken, the same jobs the global order would give.
        // The reads take no lock: most calls find nothing to start.
        let pairs: Vec<String> = conn
            .prepare_cached(JOB_PAIRS)
            .and_then(|mut stmt| {
                stmt.query_map([], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()
            })
            .map_err(err)?;
        let mut found = Vec::new();
        let mut unreadable = Vec::new();
        {
            let mut stmt = conn.prepare_cached(DUE_OF_PAIR).map_err(err)?;
            for pair in pairs {
                let room = per_pair
                    .saturating_sub(busy.get(&pair).copied().unwrap_or(0))
                    .min(max);
                if room == 0 {
                    continue;
                }
                let mut rows = stmt.query(params![pair, now.0]).map_err(err)?;
                let mut taken = 0;
                while taken < room {
                    let Some(row) = rows.next().map_err(err)? else {
                        break;
                    };
                    let (seq, json, due): (i64, String, i64) = (
                        row.get(0).map_err(err)?,
                        row.get(1).map_err(err)?,
                        row.get(2).map_err(err)?,
                    );
                    match serde_json::from_str(&json) {
                        Ok(job) => {
                            taken += 1;
                            let pair = pair.clone();
                            found.push((due, Leased { seq, job, pair }));
                        }
                        Err(e) => unreadable.push((seq, e.to_string())),
                    }
                }
            }
        }
        found.sort_by_key(|(due, l)| (*due, l.seq));
        let found: Vec<Leased> = found.into_iter().take(max).map(|(_, l)| l).collect();
        if found.is_empty() && unreadable.is_empty() {
            return Ok(found);
        }
        // Leased under the write lock, each only if it is still free and due: another
        // connection may have leased or parked it since it was read.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let until = now.plus(lease).0;
        let mut out = Vec::with_capacity(found.len());
        for l in found {
            let leased = tx
                .exec(
                    "UPDATE jobs SET leased_until = ?1
                     WHERE seq = ?2 AND due <= ?3 AND parked IS NULL
                       AND (leased_until IS NULL OR leased_until < ?3)",
                    params![until, l.seq, now.0],
                )
                .map_err(err)?;
            if leased == 1 {
                out.push(l);
            }
        }
        for (seq, e) in unreadable {
            tracing::error!(seq, error = %e, "unreadable job parked");
            tx.exec(
                "UPDATE jobs SET leased_until = NULL, parked = ?1, parked_at = ?2
                 WHERE seq = ?3",
                params![format!("not a job: {e}"), now.0, seq],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok(out)
    }

    /// Frees every lease: called when the one process that works the queue starts, since any
    /// lease then belongs to a process that died (its jobs run again at once).
    fn reset_leases_now(&self) -> Result<usize> {
        self.conn()
            .exec(
                "UPDATE jobs SET leased_until = NULL WHERE leased_until IS NOT NULL",
                [],
            )
            .map_err(err)
    }

    /// Removes a finished job.
    fn ack_now(&self, seq: i64) -> Result<()> {
        self.conn()
            .exec("DELETE FROM jobs WHERE seq = ?1", params![seq])
            .map_err(err)?;
        Ok(())
    }

    /// Jobs waiting (leased or not; parked ones not counted).
    pub fn pending_jobs(&self) -> Result<usize> {
        let n: i64 = self
            .conn()
            .row("SELECT COUNT(*) FROM jobs WHERE parked IS NULL", [], |r| {
                r.get(0)
            })
            .map_err(err)?;
        Ok(n as usize)
    }

    /// The ids of inbound records still `receiving`: what a crash interrupted.
    fn unfinished_receives_now(&self) -> Result<Vec<String>> {
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(
                "SELECT id FROM records WHERE direction = 'inbox' \
                 AND json_extract(json, '$.status') = 'receiving' ORDER BY id",
            )
            .map_err(err)?;
        let ids = st
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(err)?
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(err)?;
        Ok(ids)
    }

    fn record_from(json: &str) -> Result<MessageRecord> {
        serde_json::from_str(json).map_err(err)
    }
}

impl DuplicateIndex for Db {
    async fn claim(&self, send: &SendKey, request: &ClaimRequest<'_>) -> Result<Claim> {
        let send = send.clone();
        let (upload_id, record_id) = (request.upload_id.to_string(), request.record_id.to_string());
        let (at, window) = (request.at, request.window);
        blocking::run(self, "database", move |db: &Db| {
            let request = ClaimRequest {
                upload_id: &upload_id,
                record_id: &record_id,
                at,
                window,
            };
            db.claim_now(&send, &request)
        })
        .await
    }
}

impl Db {
    fn claim_now(&self, send: &SendKey, request: &ClaimRequest<'_>) -> Result<Claim> {
        let key = params![send.station, send.partner, send.name];
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let existing = tx
            .row(
                "SELECT upload_id, record_id, accepted_at, window_ends FROM claims WHERE station = ?1 AND partner = ?2 AND name = ?3",
                key,
                |r| {
                    Ok(ClaimRecord {
                        upload_id: r.get(0)?,
                        record_id: r.get(1)?,
                        accepted_at: Millis(r.get(2)?),
                        window_ends: Millis(r.get(3)?),
                    })
                },
            )
            .optional()
            .map_err(err)?;
        let claim = Claim::judge(existing.as_ref(), request);
        if claim != Claim::Accepted {
            return Ok(claim);
        }
        let c = request.accepted();
        tx.exec(
            "INSERT INTO claims (station, partner, name, upload_id, record_id, accepted_at, window_ends) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (station, partner, name) DO UPDATE SET upload_id = ?4, record_id = ?5, accepted_at = ?6, window_ends = ?7",
            params![send.station, send.partner, send.name, c.upload_id, c.record_id, c.accepted_at.0, c.window_ends.0],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(Claim::Accepted)
    }
}

impl MessageLog for Db {
    async fn create(&self, record: &MessageRecord) -> Result<Created> {
        let record = record.clone();
        blocking::run(self, "database", move |db: &Db| db.create_now(&record)).await
    }

    async fn get(&self, id: &str) -> Result<Option<MessageRecord>> {
        let id = id.to_string();
        blocking::run(self, "database", move |db: &Db| db.get_now(&id)).await
    }

    async fn update(&self, record: &mut MessageRecord) -> Result<()> {
        let mut next = record.clone();
        let (next, result) = blocking::run(self, "database", move |db: &Db| {
            let result = db.update_now(&mut next);
            Ok((next, result))
        })
        .await?;
        *record = next;
        result
    }

    async fn find_outbound(
        &self,
        station: &str,
        partner: &str,
        message_id: &str,
    ) -> Result<Option<MessageRecord>> {
        let (station, partner, message_id) = (
            station.to_string(),
            partner.to_string(),
            message_id.to_string(),
        );
        blocking::run(self, "database", move |db: &Db| {
            db.find_outbound_now(&station, &partner, &message_id)
        })
        .await
    }

    async fn query(&self, query: &RecordQuery) -> Result<Vec<MessageRecord>> {
        let query = query.clone();
        blocking::run(self, "database", move |db: &Db| db.query_now(&query)).await
    }
}

impl JobQueue for Db {
    async fn enqueue(&self, job: Job, not_before: Millis) -> Result<()> {
        blocking::run(self, "database", move |db: &Db| {
            db.enqueue_now(&job, not_before)
        })
        .await
    }
}

impl Db {
    fn create_now(&self, record: &MessageRecord) -> Result<Created> {
        let json = serde_json::to_string(record).map_err(err)?;
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let inserted = tx
            .exec(
                "INSERT INTO records (id, direction, station, partner, message_id, revision, json)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
                params![
                    record.id,
                    record.direction.as_str(),
                    record.station,
                    record.partner,
                    core(&record.message_id),
                    record.revision as i64,
                    json
                ],
            )
            .map_err(err)?;
        if inserted == 1 {
            tx.commit().map_err(err)?;
            return Ok(Created::New);
        }
        let existing: String = tx
            .row(
                "SELECT json FROM records WHERE id = ?1
                 OR (direction = 'inbox' AND ?2 = 'inbox' AND station = ?3 AND partner = ?4 AND message_id = ?5 AND message_id != '')
                 LIMIT 1",
                params![record.id, record.direction.as_str(), record.station, record.partner, core(&record.message_id)],
                |r| r.get(0),
            )
            .map_err(err)?;
        Ok(Created::Exists(Box::new(Db::record_from(&existing)?)))
    }

    fn get_now(&self, id: &str) -> Result<Option<MessageRecord>> {
        let json: Option<String> = self
            .conn()
            .row("SELECT json FROM records WHERE id = ?1", params![id], |r| {
                r.get(0)
            })
            .optional()
            .map_err(err)?;
        json.map(|j| Db::record_from(&j)).transpose()
    }

    fn update_now(&self, record: &mut MessageRecord) -> Result<()> {
        let next = record.next_revision();
        let json = serde_json::to_string(&next).map_err(err)?;
        let changed = self
            .conn()
            .exec(
                "UPDATE records SET json = ?1, revision = ?2, message_id = ?3 WHERE id = ?4 AND revision = ?5",
                params![json, next.revision as i64, core(&next.message_id), record.id, record.revision as i64],
            )
            .map_err(err)?;
        apply_update(record, next, changed == 1)
    }

    fn find_outbound_now(
        &self,
        station: &str,
        partner: &str,
        message_id: &str,
    ) -> Result<Option<MessageRecord>> {
        let json: Option<String> = self
            .conn()
            .row(
                "SELECT json FROM records WHERE direction = 'outbox' AND station = ?1 AND partner = ?2 AND message_id = ?3",
                params![station, partner, core(message_id)],
                |r| r.get(0),
            )
            .optional()
            .map_err(err)?;
        json.map(|j| Db::record_from(&j)).transpose()
    }

    /// Narrows by the indexed columns in SQL, newest first, a batch at a time, and decides with
    /// [`RecordQuery::matches`] (status, times, file name live in the record's JSON).
    fn query_now(&self, query: &RecordQuery) -> Result<Vec<MessageRecord>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, json FROM records WHERE (?1 IS NULL OR station = ?1) AND (?2 IS NULL OR partner = ?2)
                 AND (?3 IS NULL OR direction = ?3) AND (?4 IS NULL OR message_id = ?4) AND (?5 IS NULL OR id < ?5)
                 ORDER BY id DESC LIMIT ?6",
            )
            .map_err(err)?;
        let direction = query.direction.map(|d| d.as_str());
        let message_id = query.message_id.as_deref().map(core);
        let batch = query.limit.clamp(1, 500) as i64;
        let mut before = query.before.clone();
        let mut out = Vec::new();
        // Bounded: each batch moves the cursor back by up to `batch` records.
        for _ in 0..100_000 {
            let rows: Vec<(String, String)> = stmt
                .query_map(
                    params![
                        query.station,
                        query.partner,
                        direction,
                        message_id,
                        before,
                        batch
                    ],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(err)?
                .collect::<std::result::Result<_, _>>()
                .map_err(err)?;
            let last = rows.last().map(|(id, _)| id.clone());
            for (_, json) in &rows {
                let record = Db::record_from(json)?;
                if out.len() < query.limit && query.matches(&record) {
                    out.push(record);
                }
            }
            if out.len() >= query.limit || (rows.len() as i64) < batch {
                break;
            }
            before = last;
        }
        Ok(out)
    }

    /// Queues `job`; a webhook's first post of an event (`Notify`, attempt 0) only once per
    /// event and webhook, so an event told again after a crash is not posted twice.
    ///
    /// A queued job is flushed to disk before this returns, as SQS keeps a message it has
    /// taken, not only safe from a crash of the process: an upload is removed from the send
    /// folder once its job is queued. The other commits are not (`synchronous = NORMAL`), but
    /// the write-ahead log is written in order, so this flush also keeps every commit before it
    /// (the upload's claim and record).
    fn enqueue_now(&self, job: &Job, not_before: Millis) -> Result<()> {
        let json = serde_json::to_string(job).map_err(err)?;
        let mut conn = self.conn();
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
        let queued = insert_job(&mut conn, job, not_before, &json);
        let restored = conn
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(err);
        queued?;
        restored
    }

    /// Notes that a run with `webhooks` started at `now`, and returns the run before it if that
    /// one never said it stopped ([`Db::end_run`]): when it started and its webhooks. Forgets
    /// which events were queued for webhooks more than 30 days ago.
    pub fn begin_run(
        &self,
        now: Millis,
        webhooks: &[String],
    ) -> Result<Option<(Millis, Vec<String>)>> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let last: Option<(i64, String)> = tx
            .query_row(
                "SELECT started_at, webhooks FROM runs WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(err)?;
        let names = serde_json::to_string(webhooks).map_err(err)?;
        tx.exec(
            "INSERT INTO runs (id, started_at, webhooks) VALUES (1, ?1, ?2)
             ON CONFLICT (id) DO UPDATE SET started_at = ?1, webhooks = ?2",
            params![now.0, names],
        )
        .map_err(err)?;
        tx.exec(
            "DELETE FROM announced WHERE at < ?1",
            params![now.0 - 30 * 86_400_000],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(last.map(|(at, names)| (Millis(at), serde_json::from_str(&names).unwrap_or_default())))
    }

    /// Notes that the run stopped cleanly.
    pub fn end_run(&self) -> Result<()> {
        self.conn()
            .exec("DELETE FROM runs WHERE id = 1", [])
            .map_err(err)?;
        Ok(())
    }
}

/// [`Db::enqueue_now`]'s insert, on `conn`.
fn insert_job(conn: &mut Connection, job: &Job, not_before: Millis, json: &str) -> Result<()> {
    let pair = job_pair(job);
    let insert = concat!(
        "INSERT INTO jobs (due, json, pair) VALUES (?1, ?2, ",
        pair_of_record!("?3"),
        ")"
    );
    let Job::Notify {
        webhook,
        attempt: 0,
        event,
    } = job
    else {
        conn.exec(insert, params![not_before.0, json, pair])
            .map_err(err)?;
        return Ok(());
    };
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(err)?;
    let new = tx
        .exec(
            "INSERT INTO announced (event, webhook, at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            params![event.id, webhook, event.at.0],
        )
        .map_err(err)?;
    if new == 0 {
        tracing::debug!(event = %event.id, %webhook, "event queued for this webhook before");
    } else {
        tx.exec(insert, params![not_before.0, json, pair])
            .map_err(err)?;
    }
    tx.commit().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway::layout::Direction;
    use gateway::model::{Status, StatusChange};

    fn rec(id: &str, dir: Direction, mid: &str) -> MessageRecord {
        let mut r = MessageRecord::new(
            id,
            dir,
            "A",
            "B",
            "f",
            StatusChange::new(Millis(1), Status::Received, None),
        );
        r.message_id = mid.into();
        r
    }

    #[tokio::test]
    async fn a_webhook_is_given_an_event_once_and_runs_are_noted() {
        let tmp = tempfile::tempdir().unwrap();
        let db = Db::open(&tmp.path().join("x/db.sqlite")).unwrap();
        let mut r = rec("1", Direction::Outbox, "<m1@x>");
        r.status = Status::Delivered;
        let event = gateway::events::Event::of_record(&r).unwrap();
        let notify = |webhook: &str, attempt: u32| Job::Notify {
            webhook: webhook.into(),
            attempt,
            event: Box::new(event.clone()),
        };
        for job in [
            notify("ops", 0),
            notify("ops", 0),
            notify("audit", 0),
            notify("ops", 1),
            notify("ops", 1),
        ] {
            db.enqueue(job, Millis(0)).await.unwrap();
        }
        // The first post once per webhook; retries as often as they are queued.
        let jobs = db
            .take_due(Millis(10), Duration::from_secs(60), 10)
            .await
            .unwrap();
        assert_eq!(jobs.len(), 4);
        // The first run has no run before it; one that never ended is returned with its webhooks.
        assert_eq!(db.begin_run(Millis(100), &["ops".into()]).unwrap(), None);
        assert_eq!(
            db.begin_run(Millis(200), &[]).unwrap(),
            Some((Millis(100), vec!["ops".to_string()]))
        );
        db.end_run().unwrap();
        assert_eq!(db.begin_run(Millis(300), &[]).unwrap(), None);
    }

    #[tokio::test]
    async fn records_claims_and_jobs() {
        let tmp = tempfile::tempdir().unwrap();
        let db = Db::open(&tmp.path().join("x/db.sqlite")).unwrap();
        assert_eq!(
            db.create(&rec("1", Direction::Inbox, "<m1@x>"))
                .await
                .unwrap(),
            Created::New
        );
        // The same inbound Message-ID, bracketed or not, is the same message.
        match db
            .create(&rec("2", Direction::Inbox, "m1@x"))
            .await
            .unwrap()
        {
            Created::Exists(r) => assert_eq!(r.id, "1"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            db.create(&rec("1", Direction::Outbox, "")).await.unwrap(),
            Created::Exists(_)
        ));
        let mut r = db.get("1").await.unwrap().unwrap();
        let mut stale = r.clone();
        r.size = 5;
        db.update(&mut r).await.unwrap();
        assert_eq!(r.revision, 1);
        assert!(matches!(
            db.update(&mut stale).await,
            Err(GatewayError::Conflict(_))
        ));
        let mut out = rec("3", Direction::Outbox, "");
        db.create(&out).await.unwrap();
        out.message_id = "<o1@a>".into();
        db.update(&mut out).await.unwrap();
        assert_eq!(
            db.find_outbound("A", "B", "o1@a")
                .await
                .unwrap()
                .unwrap()
                .id,
            "3"
        );
        assert_eq!(
            db.query(&gateway::ports::RecordQuery::of(Some("A"), None, 10))
                .await
                .unwrap()
                .iter()
                .map(|r| r.id.as_str())
                .collect::<Vec<_>>(),
            vec!["3", "1"]
        );

        let w = Duration::from_secs(100);
        assert_eq!(
            db.claim(
                &SendKey::new("A", "B", "n"),
                &ClaimRequest {
                    upload_id: "v1",
                    record_id: "r1",
                    at: Millis(0),
                    window: w
                },
            )
            .await
            .unwrap(),
            Claim::Accepted
        );
        assert_eq!(
            db.claim(
                &SendKey::new("A", "B", "n"),
                &ClaimRequest {
                    upload_id: "v1",
                    record_id: "rX",
                    at: Millis(5),
                    window: w
                },
            )
            .await
            .unwrap(),
            Claim::Redelivery {
                record_id: "r1".into()
            }
        );
        assert_eq!(
            db.claim(
                &SendKey::new("A", "B", "n"),
                &ClaimRequest {
                    upload_id: "v2",
                    record_id: "rX",
                    at: Millis(99_999),
                    window: w
                },
            )
            .await
            .unwrap(),
            Claim::Duplicate {
                accepted_at: Millis(0),
                record_id: "r1".into()
            }
        );
        assert_eq!(
            db.claim(
                &SendKey::new("A", "B", "n"),
                &ClaimRequest {
                    upload_id: "v3",
                    record_id: "r3",
                    at: Millis(100_000),
                    window: w
                },
            )
            .await
            .unwrap(),
            Claim::Accepted
        );

        db.enqueue(Job::Send { id: "a".into() }, Millis(10))
            .await
            .unwrap();
        db.enqueue(Job::Send { id: "b".into() }, Millis(20))
            .await
            .unwrap();
        // Only the enqueue's own commit is flushed (the power-loss test checks that it is):
        // the connection is back to `NORMAL` (1) for the commits after it.
        let synchronous: i64 = db
            .conn()
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(synchronous, 1);
        assert!(db
            .take_due(Millis(5), Duration::from_secs(1), 10)
            .await
            .unwrap()
            .is_empty());
        let got = db
            .take_due(Millis(10), Duration::from_secs(1), 10)
            .await
            .unwrap();
        assert_eq!(got.len(), 1);
        assert!(
            db.take_due(Millis(20), Duration::from_secs(1), 10)
                .await
                .unwrap()
                .iter()
                .all(|l| l.job != got[0].job),
            "leased"
        );
        // The lease runs out: the job comes back (a worker died).
        let again = db
            .take_due(Millis(2000), Duration::from_secs(1), 10)
            .await
            .unwrap();
        assert_eq!(again.len(), 2);
        for l in again {
            db.ack(l.seq).await.unwrap();
        }
        assert_eq!(db.pending_jobs().unwrap(), 0);
    }

    #[tokio::test]
    async fn record_queries() {
        let tmp = tempfile::tempdir().unwrap();
        let db = Db::open(&tmp.path().join("db.sqlite")).unwrap();
        gateway::memory::check_record_queries(&db).await;
    }

    #[tokio::test]
    async fn the_window_is_fixed_at_acceptance() {
        let tmp = tempfile::tempdir().unwrap();
        let db = Db::open(&tmp.path().join("db.sqlite")).unwrap();
        gateway::memory::check_window_fixed_at_acceptance(&db).await;
    }

    #[tokio::test]
    async fn jobs_are_taken_oldest_first_within_each_partnerships_share() {
        use gateway::ports::JobQueue as _;
        let tmp = tempfile::tempdir().unwrap();
        let db = Db::open(&tmp.path().join("db.sqlite")).unwrap();
        // Records of two partnerships (A/B, A/C) and jobs for them, interleaved.
        for (id, partner) in [
            ("b1", "B"),
            ("b2", "B"),
            ("b3", "B"),
            ("c1", "C"),
            ("c2", "C"),
        ] {
            let mut r = rec(id, Direction::Outbox, &format!("<{id}@x>"));
            r.partner = partner.into();
            db.create(&r).await.unwrap();
        }
        for (n, id) in ["b1", "c1", "b2", "c2", "b3"].iter().enumerate() {
            db.enqueue(Job::Send { id: (*id).into() }, Millis(n as i64))
                .await
                .unwrap();
        }
        db.enqueue(Job::Send { id: "gone".into() }, Millis(9))
            .await
            .unwrap();
        let lease = Duration::from_secs(60);
        let ids = |t: &[Leased]| -> Vec<String> {
            t.iter().map(|l| l.job.record_id().to_string()).collect()
        };
        // One each: A/B's first, A/C's first, and the job whose message is gone.
        let t = db
            .take_due_for(Millis(100), lease, 10, 1, HashMap::new())
            .await
            .unwrap();
        assert_eq!(ids(&t), ["b1", "c1", "gone"]);
        assert_eq!(t[0].pair, "A/B");
        assert_eq!(t[2].pair, "");
        // While b1 and c1 run, neither has a turn; the rest stay queued, in order, not leased.
        let busy: HashMap<String, usize> = [("A/B".to_string(), 1), ("A/C".to_string(), 1)].into();
        let t2 = db
            .take_due_for(Millis(100), lease, 10, 1, busy.clone())
            .await
            .unwrap();
        assert!(t2.is_empty(), "{t2:?}");
        db.ack(t[0].seq).await.unwrap();
        db.ack(t[1].seq).await.unwrap();
        let t3 = db
            .take_due_for(Millis(100), lease, 10, 2, HashMap::new())
            .await
            .unwrap();
        assert_eq!(ids(&t3), ["b2", "c2", "b3"]);
        // At most `max` in all.
        assert!(
            db.take_due_for(Millis(100_000_000), lease, 1, 5, HashMap::new())
                .await
                .unwrap()
                .len()
                <= 1
        );
    }

    #[test]
    fn taking_due_jobs_reads_each_partnership_in_index_order_without_sorting_the_backlog() {
        let tmp = tempfile::tempdir().unwrap();
        let db = Db::open(&tmp.path().join("db.sqlite")).unwrap();
        let conn = db.conn();
        for (sql, params) in [(JOB_PAIRS, 0), (DUE_OF_PAIR, 2)] {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let values: Vec<i64> = vec![0; params];
            let plan: Vec<String> = stmt
                .query_map(rusqlite::params_from_iter(values), |r| r.get(3))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            let plan = plan.join("\n");
            assert!(plan.contains("jobs_by_pair"), "{plan}");
            assert!(!plan.contains("TEMP B-TREE"), "{plan}");
        }
    }

    /// The jobs a take must give: due, free and not parked, oldest first, skipping those of a
    /// partnership with no room left (counting the `busy` ones), at most `max`.
    fn expected_take(
        jobs: &[(i64, i64, &str, bool)],
        now: i64,
        max: usize,
        per_pair: usize,
        busy: &HashMap<String, usize>,
    ) -> Vec<i64> {
        let mut due: Vec<_> = jobs
            .iter()
            .filter(|(_, d, _, leased)| *d <= now && !leased)
            .collect();
        due.sort_by_key(|(seq, d, ..)| (*d, *seq));
        let mut taken: HashMap<&str, usize> = HashMap::new();
        let mut out = Vec::new();
        for (seq, _, pair, _) in due {
            let n = taken.entry(pair).or_default();
            if out.len() < max && busy.get(*pair).copied().unwrap_or(0) + *n < per_pair {
                *n += 1;
                out.push(*seq);
            }
        }
        out
    }

    #[tokio::test]
    async fn a_take_gives_what_the_queue_in_global_order_would() {
        let tmp = tempfile::tempdir().unwrap();
        let db = Db::open(&tmp.path().join("db.sqlite")).unwrap();
        let pairs = ["A/B", "A/C", "D/E"];
        for (i, p) in pairs.iter().enumerate() {
            let mut r = rec(&format!("r{i}"), Direction::Outbox, &format!("<r{i}@x>"));
            (r.station, r.partner) = p
                .split_once('/')
                .map(|(s, q)| (s.into(), q.into()))
                .unwrap();
            db.create(&r).await.unwrap();
        }
        let lease = Duration::from_secs(60);
        // A small deterministic generator: the cases are the same on every run.
        let mut state = 0x2545_f491_u64;
        let mut next = move |n: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            (state >> 33) % n
        };
        for case in 0..40 {
            let mut jobs = Vec::new();
            for _ in 0..next(30) {
                let (pair, id) = match next(4) {
                    3 => ("", "gone".to_string()),
                    k => (pairs[k as usize], format!("r{k}")),
                };
                let due = next(50) as i64;
                db.enqueue_now(&Job::Send { id }, Millis(due)).unwrap();
                let seq = db.conn().last_insert_rowid();
                jobs.push((seq, due, pair, false));
            }
            // Some taken already (leased), some partnerships running jobs elsewhere.
            for _ in 0..next(3) {
                let t = db
                    .take_due_now(Millis(50), lease, 1, usize::MAX, &HashMap::new())
                    .unwrap();
                for l in t {
                    jobs.iter_mut()
                        .filter(|j| j.0 == l.seq)
                        .for_each(|j| j.3 = true);
                }
            }
            let mut busy: HashMap<String, usize> = HashMap::new();
            for p in pairs {
                if next(2) == 0 {
                    busy.insert(p.to_string(), next(3) as usize);
                }
            }
            let (now, max, per_pair) =
                (next(60) as i64, 1 + next(8) as usize, 1 + next(4) as usize);
            let want = expected_take(&jobs, now, max, per_pair, &busy);
            let got: Vec<i64> = db
                .take_due_now(Millis(now), lease, max, per_pair, &busy)
                .unwrap()
                .iter()
                .map(|l| l.seq)
                .collect();
            assert_eq!(
                got, want,
                "case {case}: now {now}, max {max}, per pair {per_pair}, busy {busy:?}"
            );
            db.conn().execute_batch("DELETE FROM jobs").unwrap();
        }
    }

    #[tokio::test]
    async fn jobs_of_an_older_database_count_against_their_partnership() {
        let tmp = tempfile::tempdir().unwrap();
        // A database from before jobs carried their partnership: two jobs of A/B, one of A/C,
        // one for a record that is gone and a webhook post, queued then.
        let path = tmp.path().join("db.sqlite");
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "CREATE TABLE records (
                     id TEXT PRIMARY KEY, direction TEXT NOT NULL, station TEXT NOT NULL,
                     partner TEXT NOT NULL, message_id TEXT NOT NULL, revision INTEGER NOT NULL,
                     json TEXT NOT NULL);
                 INSERT INTO records VALUES ('b1', 'outbox', 'A', 'B', '<b1@x>', 1, '{}');
                 INSERT INTO records VALUES ('b2', 'outbox', 'A', 'B', '<b2@x>', 1, '{}');
                 INSERT INTO records VALUES ('c1', 'outbox', 'A', 'C', '<c1@x>', 1, '{}');
                 CREATE TABLE jobs (seq INTEGER PRIMARY KEY AUTOINCREMENT, due INTEGER NOT NULL,
                     leased_until INTEGER, json TEXT NOT NULL, parked TEXT, parked_at INTEGER,
                     failures INTEGER NOT NULL DEFAULT 0);
                 INSERT INTO jobs (due, json) VALUES (0, '{\"kind\":\"send\",\"id\":\"b1\"}');
                 INSERT INTO jobs (due, json) VALUES (1, '{\"kind\":\"send\",\"id\":\"b2\"}');
                 INSERT INTO jobs (due, json) VALUES (2, '{\"kind\":\"send\",\"id\":\"c1\"}');
                 INSERT INTO jobs (due, json) VALUES (3, '{\"kind\":\"send\",\"id\":\"gone\"}');",
            )
            .unwrap();
        let db = Db::open(&path).unwrap();
        let lease = Duration::from_secs(60);
        let busy: HashMap<String, usize> = [("A/C".to_string(), 1)].into();
        let t = db
            .take_due_for(Millis(10), lease, 10, 1, busy)
            .await
            .unwrap();
        let taken: Vec<(&str, &str)> = t
            .iter()
            .map(|l| (l.job.record_id(), l.pair.as_str()))
            .collect();
        assert_eq!(taken, [("b1", "A/B"), ("gone", "")]);
        // Opened again (nothing more to change), with b1 running: A/C's turn has come.
        drop(db);
        let db = Db::open(&path).unwrap();
        let busy: HashMap<String, usize> = [("A/B".to_string(), 1)].into();
        let t = db
            .take_due_for(Millis(10), lease, 10, 1, busy)
            .await
            .unwrap();
        let taken: Vec<&str> = t.iter().map(|l| l.job.record_id()).collect();
        assert_eq!(taken, ["c1"]);
    }

    #[tokio::test]
    async fn jobs_that_cannot_run_are_parked_until_redriven() {
        use gateway::ports::JobQueue as _;
        let tmp = tempfile::tempdir().unwrap();
        // A database from before parking: its jobs table gets the columns, its job stays.
        let path = tmp.path().join("db.sqlite");
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "CREATE TABLE jobs (seq INTEGER PRIMARY KEY AUTOINCREMENT, due INTEGER NOT NULL,
                     leased_until INTEGER, json TEXT NOT NULL);
                 INSERT INTO jobs (due, json) VALUES (0, '{\"kind\":\"send\",\"id\":\"old\"}');
                 INSERT INTO jobs (due, json) VALUES (0, 'not a job');",
            )
            .unwrap();
        let db = Db::open(&path).unwrap();
        let lease = Duration::from_secs(60);
        let taken = db.take_due(Millis(10), lease, 10).await.unwrap();
        assert_eq!(
            taken.len(),
            1,
            "the unreadable one is parked, not handed out"
        );
        db.park(taken[0].seq, "the partnership is gone".into(), Millis(11))
            .await
            .unwrap();
        db.enqueue(Job::Send { id: "flaky".into() }, Millis(0))
            .await
            .unwrap();
        // A job failing for a passing reason runs again, and is parked once that keeps up.
        for n in 1..=FAILURES_BEFORE_PARKING {
            let t = db.take_due(Millis(1_000_000), lease, 10).await.unwrap();
            assert_eq!(t.len(), 1, "run {n}");
            let parked = db
                .fail(t[0].seq, "disk full".into(), Millis(20), Duration::ZERO)
                .await
                .unwrap();
            assert_eq!(parked, n == FAILURES_BEFORE_PARKING);
        }
        assert!(db
            .take_due(Millis(2_000_000), lease, 10)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(db.pending_jobs().unwrap(), 0);
        let parked = db.parked().await.unwrap();
        assert_eq!(parked.len(), 3, "{parked:#?}");
        assert_eq!(parked[0].body.as_deref(), Some("not a job"));
        let old = parked
            .iter()
            .find(|p| p.record_id() == Some("old"))
            .unwrap();
        assert_eq!(old.reason.as_deref(), Some("the partnership is gone"));
        let flaky = parked
            .iter()
            .find(|p| p.record_id() == Some("flaky"))
            .unwrap();
        assert!(flaky
            .reason
            .as_deref()
            .unwrap()
            .contains("10 times in a row; the last: disk full"));
        // Redriven, one or all, they run again.
        let one: i64 = old.id.parse().unwrap();
        assert_eq!(db.redrive(Some(one), Millis(5)).await.unwrap(), 1);
        let t = db.take_due(Millis(5), lease, 10).await.unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].job, Job::Send { id: "old".into() });
        assert_eq!(db.redrive(None, Millis(6)).await.unwrap(), 2);
        assert_eq!(db.parked().await.unwrap().len(), 0);
    }

    #[tokio::test]
    async fn claims_of_an_older_database_get_the_default_window() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("db.sqlite");
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "CREATE TABLE claims (
                     station TEXT NOT NULL, partner TEXT NOT NULL, name TEXT NOT NULL,
                     upload_id TEXT NOT NULL, record_id TEXT NOT NULL, accepted_at INTEGER NOT NULL,
                     PRIMARY KEY (station, partner, name));
                 INSERT INTO claims VALUES ('A', 'B', 'n', 'v1', 'r1', 1000);",
            )
            .unwrap();
        let db = Db::open(&path).unwrap();
        let window = gateway::DEFAULT_DUPLICATE_WINDOW;
        let ask = |upload_id, at| ClaimRequest {
            upload_id,
            record_id: "r2",
            at,
            window: Duration::from_secs(1),
        };
        let send = SendKey::new("A", "B", "n");
        let before_end = Millis(1000).plus(window - Duration::from_millis(1));
        assert_eq!(
            db.claim(&send, &ask("v2", before_end)).await.unwrap(),
            Claim::Duplicate {
                accepted_at: Millis(1000),
                record_id: "r1".into()
            }
        );
        let at_end = Millis(1000).plus(window);
        assert_eq!(
            db.claim(&send, &ask("v2", at_end)).await.unwrap(),
            Claim::Accepted
        );
        // Opening it again changes nothing.
        drop(db);
        Db::open(&path).unwrap();
    }

    #[tokio::test]
    async fn claims_are_atomic_across_connections() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("db.sqlite");
        let dbs: Vec<_> = (0..8)
            .map(|_| std::sync::Arc::new(Db::open(&path).unwrap()))
            .collect();
        let mut handles = Vec::new();
        for (i, db) in dbs.into_iter().enumerate() {
            handles.push(std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                rt.block_on(db.claim(
                    &SendKey::new("A", "B", "same.edi"),
                    &ClaimRequest {
                        upload_id: &format!("v{i}"),
                        record_id: &format!("r{i}"),
                        at: Millis(0),
                        window: Duration::from_secs(60),
                    },
                ))
                .unwrap()
            }));
        }
        let claims: Vec<Claim> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(
            claims.iter().filter(|c| **c == Claim::Accepted).count(),
            1,
            "{claims:?}"
        );
    }

    #[tokio::test]
    async fn a_job_is_leased_once_across_connections() {
        use gateway::ports::JobQueue as _;
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("db.sqlite");
        let first = Db::open(&path).unwrap();
        for n in 0..40 {
            first
                .enqueue(
                    Job::Send {
                        id: format!("m{n}"),
                    },
                    Millis(0),
                )
                .await
                .unwrap();
        }
        // Four connections take at once, each as much as it can, until none finds more.
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let db = Db::open(&path).unwrap();
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    for _ in 0..100 {
                        let t = db
                            .take_due_now(
                                Millis(10),
                                Duration::from_secs(60),
                                3,
                                usize::MAX,
                                &HashMap::new(),
                            )
                            .unwrap();
                        if t.is_empty() {
                            break;
                        }
                        got.extend(t.into_iter().map(|l| l.seq));
                    }
                    got
                })
            })
            .collect();
        let mut all: Vec<i64> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        all.sort_unstable();
        let expected: Vec<i64> = (1..=40).collect();
        assert_eq!(all, expected, "each job leased exactly once");
    }
}
