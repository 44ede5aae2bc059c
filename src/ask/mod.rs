//! Ask (SPEC §5): an admin's question → the model's SQL → the guard over the
//! telemetry tables → a bounded, interruptible run. [`ask`] does every step
//! and writes the `usage.ask` audit row; the JSON API and the Telemetry page's
//! Ask box both call it.

pub mod anthropic;
pub mod prompt;

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::app::AppState;
use crate::audit::AuditEvent;
use crate::error::AppError;
use crate::repo::query_source::{self, Limits, RunError, TELEMETRY_RELATIONS};
use crate::sqlguard;
use anthropic::{LlmError, ModelConfig};

/// Longest question accepted (Agnes's limit).
pub const MAX_QUESTION_CHARS: usize = 1000;
/// Rows shown (Agnes's cap); the rest is reported as `truncated`.
pub const MAX_ROWS: usize = 1000;

/// What Ask answers (Agnes's shape; the CLI reads `question`, `sql`,
/// `row_count`, and optionally the rest). Refused SQL keeps `sql` and
/// `rationale`, gives the reason in `rejected`, and `rows: null`.
#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    pub question: String,
    pub sql: String,
    pub rationale: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected: Option<String>,
    pub columns: Vec<String>,
    /// Objects keyed by column, as Agnes's CLI reads them.
    pub rows: Option<Vec<Map<String, Value>>>,
    pub row_count: usize,
    pub truncated: bool,
    pub llm_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exec_ms: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum AskError {
    #[error("question: must not be empty")]
    EmptyQuestion,
    #[error("question: at most {MAX_QUESTION_CHARS} characters, got {0}")]
    QuestionTooLong(usize),
    #[error("Ask is not configured: set ANTHROPIC_API_KEY on the server")]
    NotConfigured,
    #[error(transparent)]
    Model(#[from] LlmError),
    #[error("SQL execution failed: {0}")]
    Execution(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<AskError> for AppError {
    fn from(e: AskError) -> AppError {
        let msg = e.to_string();
        match e {
            AskError::EmptyQuestion | AskError::Execution(_) => AppError::BadRequest(msg),
            AskError::QuestionTooLong(_) => AppError::Unprocessable(msg),
            AskError::NotConfigured => AppError::Unavailable(msg),
            AskError::Model(LlmError::Unavailable(_)) => AppError::Unavailable(msg),
            AskError::Model(LlmError::Refused(_)) => AppError::BadRequest(msg),
            AskError::Model(LlmError::BadAnswer(_) | LlmError::Failed(_)) => {
                AppError::BadGateway(msg)
            }
            AskError::Internal(e) => AppError::Internal(e),
        }
    }
}

/// Answers `question`, auditing the outcome as `usage.ask` on top of `audit`
/// (an event already carrying who, from where and the correlation id).
pub async fn ask(state: &AppState, question: &str, audit: AuditEvent) -> Result<Answer, AskError> {
    let question = question.trim();
    if question.is_empty() {
        return Err(AskError::EmptyQuestion);
    }
    let chars = question.chars().count();
    if chars > MAX_QUESTION_CHARS {
        return Err(AskError::QuestionTooLong(chars));
    }
    let started = Instant::now();
    let mut record = Record {
        question: question.to_string(),
        ..Record::default()
    };
    let result = steps(state, question, &mut record).await;
    // The row's duration covers the model and the run, not only the request so far.
    let mut audit = audit;
    audit.duration_ms = Some(audit.duration_ms.unwrap_or(0) + started.elapsed().as_millis() as i64);
    let event = match &result {
        Ok(a) if a.rejected.is_some() => audit
            .params(record.params("rejected"))
            .result("error.invalid_sql"),
        Ok(_) => audit.params(record.params("ok")).success(),
        Err(e) => {
            let (verdict, code) = match e {
                AskError::NotConfigured => ("not_configured", "not_configured"),
                AskError::Model(LlmError::Unavailable(_)) => ("llm_unavailable", "llm_unavailable"),
                AskError::Model(LlmError::Refused(_)) => ("llm_refused", "llm_refused"),
                AskError::Model(_) => ("llm_bad_answer", "llm_bad_answer"),
                AskError::Execution(_) if record.timed_out => ("timeout", "timeout"),
                AskError::Execution(_) => ("exec_failed", "exec_failed"),
                _ => ("failed", "internal"),
            };
            audit
                .params(record.params(verdict))
                .error(code, &e.to_string())
        }
    };
    state.audit(event).await;
    result
}

/// What the audit row tells about one Ask.
#[derive(Default)]
struct Record {
    question: String,
    sql: Option<String>,
    reason: Option<String>,
    row_count: usize,
    llm_ms: Option<u64>,
    exec_ms: Option<u64>,
    timed_out: bool,
}

impl Record {
    fn params(&self, verdict: &str) -> Value {
        let mut p = json!({
            "question": self.question,
            "sql": self.sql,
            "verdict": verdict,
            "row_count": self.row_count,
            "llm_ms": self.llm_ms,
            "exec_ms": self.exec_ms,
        });
        if let Some(r) = &self.reason {
            p["reason"] = json!(r);
        }
        p
    }
}

async fn steps(state: &AppState, question: &str, record: &mut Record) -> Result<Answer, AskError> {
    let config = &state.config;
    let model = ModelConfig {
        base_url: config.anthropic_base_url.clone(),
        api_key: config
            .anthropic_api_key
            .clone()
            .ok_or(AskError::NotConfigured)?,
        model: config.usage_ask_model.clone(),
    };
    let columns = state
        .db
        .run(|conn| query_source::columns_of(conn, TELEMETRY_RELATIONS))
        .await?;
    let system = prompt::system_prompt(TELEMETRY_RELATIONS, &columns);

    let started = Instant::now();
    let drafted = anthropic::draft(&model, &system, question).await;
    let llm_ms = started.elapsed().as_millis() as u64;
    record.llm_ms = Some(llm_ms);
    let draft = drafted?;
    record.sql = Some(draft.sql.clone());

    let mut answer = Answer {
        question: question.to_string(),
        sql: draft.sql.clone(),
        rationale: draft.rationale,
        rejected: None,
        columns: Vec::new(),
        rows: None,
        row_count: 0,
        truncated: false,
        llm_ms,
        exec_ms: None,
    };
    let guarded = match sqlguard::check(&draft.sql, TELEMETRY_RELATIONS) {
        Ok(g) => g,
        Err(refused) => {
            record.reason = Some(refused.0.clone());
            answer.rejected = Some(refused.0);
            return Ok(answer);
        }
    };

    let limits = Limits {
        rows: MAX_ROWS,
        timeout: Duration::from_secs(config.query_timeout_secs),
    };
    let started = Instant::now();
    let outcome = state
        .db
        .run(move |conn| Ok(query_source::run(conn, &guarded, &[], limits)))
        .await?;
    let exec_ms = started.elapsed().as_millis() as u64;
    record.exec_ms = Some(exec_ms);
    let rows = outcome.map_err(|e| {
        record.timed_out = matches!(e, RunError::TimedOut(_));
        AskError::Execution(e.to_string())
    })?;
    record.row_count = rows.rows.len();
    answer.row_count = rows.rows.len();
    answer.truncated = rows.truncated;
    answer.exec_ms = Some(exec_ms);
    answer.rows = Some(
        rows.rows
            .into_iter()
            .map(|r| rows.columns.iter().cloned().zip(r).collect())
            .collect(),
    );
    answer.columns = rows.columns;
    Ok(answer)
}
