//! `GET /api/history` (and per environment and/or application): what happened, newest first.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One page of the history.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HistoryPage {
    /// The entries, newest first.
    pub entries: Vec<HistoryEntry>,
    /// The `before` of the next page (none: this is the last page).
    pub next_before: Option<String>,
}

/// One thing a commit did to one environment and/or application.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HistoryEntry {
    /// `<commit>:<n>`, stable however often the history is rebuilt.
    pub id: String,
    /// The commit.
    pub commit: String,
    /// The commit's time (RFC 3339 UTC).
    pub time: String,
    /// Who asked for it.
    pub author: Author,
    /// `release`, `deploy`, `train`, `lock`, `unlock`, … (docs/api.md).
    pub action: String,
    /// The environment it touched.
    pub environment: Option<String>,
    /// The application it touched.
    pub application: Option<String>,
    /// The team (team locks).
    pub team: Option<String>,
    /// The version deployed before.
    pub from_version: Option<u64>,
    /// The version deployed (or queued) after.
    pub to_version: Option<u64>,
    /// A deploy that waits for a lock.
    pub queued: bool,
    /// Where the change came from: `manual`, `train from dev`, …
    pub source: Option<String>,
    /// The lock set or removed.
    pub lock_id: Option<String>,
    /// The lock's message.
    pub message: Option<String>,
    /// The request as its commit trailer records it (none: a change made outside Railyard).
    pub request: Option<Value>,
}

/// The author of a history entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Author {
    /// Their name.
    pub name: String,
    /// Their email address.
    pub email: String,
}
