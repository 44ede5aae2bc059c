//! tower-sessions store on the DuckDB file.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Utc};
use time::OffsetDateTime;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};

use crate::db::Db;
use crate::repo::web_sessions;

#[derive(Clone, Debug)]
pub struct DuckDbStore {
    db: Db,
}

impl DuckDbStore {
    pub fn new(db: Db) -> Self {
        DuckDbStore { db }
    }
}

fn to_naive(t: OffsetDateTime) -> NaiveDateTime {
    DateTime::<Utc>::from_timestamp(t.unix_timestamp(), t.nanosecond())
        .unwrap_or_default()
        .naive_utc()
}

fn to_offset(t: NaiveDateTime) -> OffsetDateTime {
    let utc = t.and_utc();
    OffsetDateTime::from_unix_timestamp_nanos(utc.timestamp_nanos_opt().unwrap_or_default() as i128)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn backend(e: anyhow::Error) -> session_store::Error {
    session_store::Error::Backend(format!("{e:#}"))
}

fn encode(record: &Record) -> session_store::Result<String> {
    serde_json::to_string(&record.data).map_err(|e| session_store::Error::Encode(e.to_string()))
}

#[async_trait]
impl SessionStore for DuckDbStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        loop {
            let (id, data, expiry) = (
                record.id.to_string(),
                encode(record)?,
                to_naive(record.expiry_date),
            );
            let inserted = self
                .db
                .run(move |c| web_sessions::create(c, &id, &data, expiry))
                .await
                .map_err(backend)?;
            if inserted {
                return Ok(());
            }
            // A 128-bit id collided: take another one.
            record.id = Id::default();
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let (id, data, expiry) = (
            record.id.to_string(),
            encode(record)?,
            to_naive(record.expiry_date),
        );
        self.db
            .run(move |c| web_sessions::save(c, &id, &data, expiry))
            .await
            .map_err(backend)
    }

    async fn load(&self, session_id: &Id) -> session_store::Result<Option<Record>> {
        let id = session_id.to_string();
        let now = Utc::now().naive_utc();
        let row = self
            .db
            .run(move |c| web_sessions::load(c, &id, now))
            .await
            .map_err(backend)?;
        row.map(|(data, expiry)| {
            let data: HashMap<String, serde_json::Value> = serde_json::from_str(&data)
                .map_err(|e| session_store::Error::Decode(e.to_string()))?;
            Ok(Record {
                id: *session_id,
                data,
                expiry_date: to_offset(expiry),
            })
        })
        .transpose()
    }

    async fn delete(&self, session_id: &Id) -> session_store::Result<()> {
        let id = session_id.to_string();
        self.db
            .run(move |c| web_sessions::delete(c, &id))
            .await
            .map_err(backend)
    }
}
