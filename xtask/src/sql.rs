//! Read-only SQL against the server's database from outside the server, for the crash runs'
//! integrity checks: SQLite through Python's standard `sqlite3` module (Python is needed by the
//! other tasks already; no SQLite library is linked into the xtask), PostgreSQL through `psql`.
//! Each query answers its rows as strings.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::error::{Context, Error};

/// Prints the rows of the query in argv[2] on the database file argv[1] as a JSON array of
/// arrays of strings. Opened read-write (not `mode=ro`): after a crash the first reader
/// replays the write-ahead log, which needs write access.
const SQLITE_SCRIPT: &str = "\
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=30)
rows = db.execute(sys.argv[2]).fetchall()
print(json.dumps([[None if v is None else str(v) for v in row] for row in rows]))
";

#[derive(Debug, Clone)]
pub enum SqlTarget {
    Sqlite { file: PathBuf },
    Postgres { url: String, schema: String },
}

impl SqlTarget {
    pub fn is_sqlite(&self) -> bool {
        matches!(self, SqlTarget::Sqlite { .. })
    }

    /// The rows of `sql`; `NULL` is `None`.
    pub fn query(&self, sql: &str) -> Result<Vec<Vec<Option<String>>>, Error> {
        match self {
            SqlTarget::Sqlite { file } => {
                let output = Command::new("python3")
                    .args(["-c", SQLITE_SCRIPT])
                    .arg(file)
                    .arg(sql)
                    .stdin(Stdio::null())
                    .output()
                    .context("running python3 for SQLite")?;
                if !output.status.success() {
                    return Err(Error::new(format!(
                        "SQLite `{sql}`: {}",
                        String::from_utf8_lossy(&output.stderr).trim()
                    )));
                }
                serde_json::from_slice(&output.stdout).map_err(|e| Error::new(format!("SQLite `{sql}`: {e}")))
            }
            SqlTarget::Postgres { url, schema } => {
                // A unit separator between fields and NULL spelled out: neither occurs in the
                // values the checks read.
                let output = Command::new("psql")
                    .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-F", "\u{1f}", "-P", "null=<NULL>"])
                    .arg(url)
                    .args(["-c", sql])
                    .env("PGOPTIONS", format!("-c search_path={schema} --client-min-messages=warning"))
                    .stdin(Stdio::null())
                    .output()
                    .context("running psql")?;
                if !output.status.success() {
                    return Err(Error::new(format!(
                        "PostgreSQL `{sql}`: {}",
                        String::from_utf8_lossy(&output.stderr).trim()
                    )));
                }
                let text = String::from_utf8_lossy(&output.stdout);
                Ok(text
                    .lines()
                    .filter(|line| !line.is_empty())
                    .map(|line| {
                        line.split('\u{1f}').map(|field| (field != "<NULL>").then(|| field.to_owned())).collect()
                    })
                    .collect())
            }
        }
    }

    /// The single number `sql` answers (a `count(*)`).
    pub fn count(&self, sql: &str) -> Result<u64, Error> {
        let rows = self.query(sql)?;
        rows.first()
            .and_then(|row| row.first())
            .and_then(|value| value.as_deref())
            .and_then(|value| value.parse().ok())
            .ok_or_else(|| Error::new(format!("`{sql}` did not answer a number: {rows:?}")))
    }
}
