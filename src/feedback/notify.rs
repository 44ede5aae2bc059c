//! Telegram messages to admins about new reports (SPEC §7): one message per
//! admin per 5 minutes; reports arriving inside the window roll into one
//! digest sent when it ends. Sending happens in the background, is retried
//! with backoff, and never delays or fails the report.
//!
//! The rate limit is a pure plan over an injected clock ([`Window::plan`],
//! [`Window::flush`]) so tests drive time; [`Telegram`] delivers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::NaiveDateTime;
use serde_json::json;

/// At most one message per admin per this long.
pub const WINDOW: chrono::Duration = chrono::Duration::minutes(5);

/// What a message says about one report.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub id: String,
    pub reporter: String,
    pub first_line: String,
    pub duplicates: i64,
    pub link: String,
}

/// A message to send to one chat.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub chat_id: String,
    pub text: String,
}

pub fn message_text(s: &Summary) -> String {
    format!(
        "New feedback from {}: {}\nDuplicates: {}\n{}",
        s.reporter, s.first_line, s.duplicates, s.link
    )
}

pub fn digest_text(items: &[Summary]) -> String {
    let mut t = format!("{} more feedback reports:\n", items.len());
    for s in items {
        t.push_str(&format!(
            "• {}: {} (duplicates: {}) {}\n",
            s.reporter, s.first_line, s.duplicates, s.link
        ));
    }
    t
}

#[derive(Debug, Default)]
struct ChatState {
    last_sent: Option<NaiveDateTime>,
    pending: Vec<Summary>,
}

/// The per-chat rate limit and digests.
#[derive(Debug, Default)]
pub struct Window {
    chats: HashMap<String, ChatState>,
}

impl Window {
    /// A new report at `now` for `chats`: the messages to send now (chats
    /// whose window is over); the others hold it for their digest.
    pub fn plan(&mut self, now: NaiveDateTime, chats: &[String], s: &Summary) -> Vec<Outgoing> {
        let mut out = Vec::new();
        for chat in chats {
            let st = self.chats.entry(chat.clone()).or_default();
            match st.last_sent {
                Some(t) if now - t < WINDOW => st.pending.push(s.clone()),
                _ => {
                    st.last_sent = Some(now);
                    out.push(Outgoing {
                        chat_id: chat.clone(),
                        text: message_text(s),
                    });
                }
            }
        }
        out
    }

    /// The digests whose window has ended by `now`.
    pub fn flush(&mut self, now: NaiveDateTime) -> Vec<Outgoing> {
        let mut out = Vec::new();
        for (chat, st) in self.chats.iter_mut() {
            let over = st.last_sent.is_none_or(|t| now - t >= WINDOW);
            if over && !st.pending.is_empty() {
                let items = std::mem::take(&mut st.pending);
                st.last_sent = Some(now);
                out.push(Outgoing {
                    chat_id: chat.clone(),
                    text: digest_text(&items),
                });
            }
        }
        out.sort_by(|a, b| a.chat_id.cmp(&b.chat_id));
        out
    }

    /// When the earliest held digest is due.
    pub fn next_due(&self) -> Option<NaiveDateTime> {
        self.chats
            .values()
            .filter(|s| !s.pending.is_empty())
            .filter_map(|s| s.last_sent.map(|t| t + WINDOW))
            .min()
    }
}

pub type Clock = Arc<dyn Fn() -> NaiveDateTime + Send + Sync>;

/// The bot: where its API is, and the windows. `None` token: disabled.
pub struct Telegram {
    base: String,
    token: Option<String>,
    client: reqwest::Client,
    clock: Clock,
    window: Mutex<Window>,
    /// Waits between attempts (the last attempt's failure is logged).
    pub backoff: Vec<Duration>,
    /// A digest flush is already scheduled.
    flush_scheduled: Mutex<bool>,
    /// One-time link codes by user id.
    codes: Mutex<HashMap<String, String>>,
}

impl Telegram {
    pub fn new(token: Option<String>, base: Option<String>, clock: Clock) -> Telegram {
        Telegram {
            base: base
                .unwrap_or_else(|| "https://api.telegram.org".into())
                .trim_end_matches('/')
                .to_string(),
            token: token.filter(|t| !t.trim().is_empty()),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(15))
                .build()
                .unwrap_or_default(),
            clock,
            window: Mutex::new(Window::default()),
            backoff: vec![
                Duration::from_secs(1),
                Duration::from_secs(5),
                Duration::from_secs(30),
            ],
            flush_scheduled: Mutex::new(false),
            codes: Mutex::new(HashMap::new()),
        }
    }

    pub fn from_config(c: &crate::config::Config) -> Telegram {
        Telegram::new(
            c.telegram_bot_token.clone(),
            c.telegram_api_base.clone(),
            Arc::new(|| chrono::Utc::now().naive_utc()),
        )
    }

    pub fn enabled(&self) -> bool {
        self.token.is_some()
    }

    fn url(&self, method: &str) -> Option<String> {
        self.token
            .as_ref()
            .map(|t| format!("{}/bot{t}/{method}", self.base))
    }

    /// Sends one message, retrying with backoff; true once Telegram took it.
    pub async fn deliver(&self, m: &Outgoing) -> bool {
        let Some(url) = self.url("sendMessage") else {
            return false;
        };
        let body = json!({"chat_id": m.chat_id, "text": m.text, "disable_web_page_preview": true});
        for attempt in 0..=self.backoff.len() {
            match self.client.post(&url).json(&body).send().await {
                Ok(r) if r.status().is_success() => return true,
                Ok(r) => {
                    tracing::warn!(status = %r.status(), attempt, "telegram refused a message")
                }
                Err(e) => tracing::warn!(error = %e, attempt, "telegram unreachable"),
            }
            if let Some(wait) = self.backoff.get(attempt) {
                tokio::time::sleep(*wait).await;
            }
        }
        tracing::error!(chat = %m.chat_id, "gave up sending a telegram message");
        false
    }

    /// The messages a new report causes now (and holds the rest).
    pub fn plan(&self, chats: &[String], s: &Summary) -> Vec<Outgoing> {
        if !self.enabled() {
            return Vec::new();
        }
        let now = (self.clock)();
        self.window.lock().unwrap().plan(now, chats, s)
    }

    /// The digests due now.
    pub fn flush_due(&self) -> Vec<Outgoing> {
        let now = (self.clock)();
        self.window.lock().unwrap().flush(now)
    }

    /// Called after a report is stored: plans and sends in the background,
    /// and schedules the digest flush for when the window ends.
    pub fn notify(self: &Arc<Self>, chats: Vec<String>, s: Summary) {
        let now_msgs = self.plan(&chats, &s);
        for m in now_msgs {
            let me = self.clone();
            tokio::spawn(async move {
                me.deliver(&m).await;
            });
        }
        self.schedule_flush();
    }

    fn schedule_flush(self: &Arc<Self>) {
        let due = self.window.lock().unwrap().next_due();
        let Some(due) = due else { return };
        {
            let mut s = self.flush_scheduled.lock().unwrap();
            if *s {
                return;
            }
            *s = true;
        }
        let me = self.clone();
        tokio::spawn(async move {
            let wait = (due - (me.clock)()).to_std().unwrap_or_default();
            tokio::time::sleep(wait).await;
            *me.flush_scheduled.lock().unwrap() = false;
            for m in me.flush_due() {
                me.deliver(&m).await;
            }
            me.schedule_flush();
        });
    }

    /// A fresh one-time code for `user` to send to the bot.
    pub fn new_code(&self, user: &str) -> String {
        let code = format!("gb-{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
        self.codes
            .lock()
            .unwrap()
            .insert(user.to_string(), code.clone());
        code
    }

    pub fn code_of(&self, user: &str) -> Option<String> {
        self.codes.lock().unwrap().get(user).cloned()
    }

    pub fn forget_code(&self, user: &str) {
        self.codes.lock().unwrap().remove(user);
    }

    /// The chat that sent `code` to the bot, from its recent updates.
    pub async fn find_code(&self, code: &str) -> anyhow::Result<Option<String>> {
        let Some(url) = self.url("getUpdates") else {
            return Ok(None);
        };
        let v: serde_json::Value = self.client.get(&url).send().await?.json().await?;
        Ok(v["result"]
            .as_array()
            .map(|a| a.as_slice())
            .unwrap_or(&[])
            .iter()
            .rev()
            .filter(|u| {
                u["message"]["text"]
                    .as_str()
                    .is_some_and(|t| t.split_whitespace().any(|w| w == code))
            })
            .filter_map(|u| match &u["message"]["chat"]["id"] {
                serde_json::Value::Number(n) => Some(n.to_string()),
                serde_json::Value::String(s) => Some(s.clone()),
                _ => None,
            })
            .next())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(min: i64) -> NaiveDateTime {
        chrono::DateTime::from_timestamp(1_700_000_000, 0)
            .unwrap()
            .naive_utc()
            + chrono::Duration::minutes(min)
    }

    fn s(id: &str) -> Summary {
        Summary {
            id: id.into(),
            reporter: "ann@example.com".into(),
            first_line: format!("problem {id}"),
            duplicates: 0,
            link: format!("/admin/feedback/{id}"),
        }
    }

    #[test]
    fn one_message_per_admin_per_five_minutes_then_one_digest() {
        let chats = vec!["1".to_string(), "2".to_string()];
        let mut w = Window::default();
        assert_eq!(w.plan(at(0), &chats, &s("a")).len(), 2);
        assert!(w.plan(at(1), &chats, &s("b")).is_empty());
        assert!(w.plan(at(4), &chats, &s("c")).is_empty());
        assert!(w.flush(at(4)).is_empty(), "the window is not over");
        assert_eq!(w.next_due(), Some(at(5)));
        let digests = w.flush(at(5));
        assert_eq!(digests.len(), 2);
        assert!(digests[0].text.starts_with("2 more feedback reports"));
        assert!(digests[0].text.contains("problem b") && digests[0].text.contains("problem c"));
        assert!(w.flush(at(20)).is_empty(), "nothing left to send");
        // The digest opened a new window: a report right after it waits.
        assert!(w.plan(at(6), &chats, &s("d")).is_empty());
        assert_eq!(w.plan(at(11), &["3".to_string()], &s("e")).len(), 1);
    }
}
