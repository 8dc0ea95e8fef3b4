//! Token usage that adds up on both servers.
//!
//! Both servers *replace* a usage row on each report: HEAD 1cc46b2697 keys
//! it by (task, provider, model), 3c93ebaf1c by (runtime, day, provider,
//! model). An agent reports what it used as it goes (increments); the
//! worker keeps the sums the server's key needs and sends those, so the
//! stored row is the sum of every report: per task at HEAD (with the cost),
//! per runtime and day at 3c93ebaf1c, where several tasks share one row.

use std::collections::HashMap;
use std::time::SystemTime;

use multica_api::layer::RetryPolicy;
use multica_api::{DaemonApi, DaemonApiExt, Endpoint, Error, RuntimeId, TaskUsage, UsageEntry};
use tokio::sync::Mutex;

/// A (provider, model) pair as the servers key it: the provider lower-cased,
/// an empty one taken to be the runtime's (HEAD's rule, applied on both).
fn key_of(usage: &TaskUsage, runtime_provider: &str) -> (String, String) {
    let provider = if usage.provider.trim().is_empty() { runtime_provider } else { usage.provider.as_str() };
    (provider.trim().to_lowercase(), usage.model.clone())
}

fn add(total: &mut TaskUsage, more: &TaskUsage) {
    total.input_tokens = total.input_tokens.saturating_add(more.input_tokens);
    total.output_tokens = total.output_tokens.saturating_add(more.output_tokens);
    total.cache_read_tokens = total.cache_read_tokens.saturating_add(more.cache_read_tokens);
    total.cache_write_tokens = total.cache_write_tokens.saturating_add(more.cache_write_tokens);
    total.cost_usd_ticks = total.cost_usd_ticks.saturating_add(more.cost_usd_ticks);
}

/// Adds `usage` to `totals` (one row per key, in first-seen order); returns
/// the keys touched.
fn accumulate(totals: &mut Vec<TaskUsage>, usage: &[TaskUsage], runtime_provider: &str) -> Vec<(String, String)> {
    let mut touched = Vec::new();
    for more in usage {
        let key = key_of(more, runtime_provider);
        let row = match totals.iter().position(|row| (row.provider.as_str(), row.model.as_str()) == (&key.0, &key.1)) {
            Some(index) => &mut totals[index],
            None => {
                totals.push(TaskUsage { provider: key.0.clone(), model: key.1.clone(), ..TaskUsage::default() });
                let last = totals.len() - 1;
                &mut totals[last]
            }
        };
        add(row, more);
        if !touched.contains(&key) {
            touched.push(key);
        }
    }
    touched
}

/// Today in UTC as `YYYY-MM-DD`, the day 3c93ebaf1c files usage under, read
/// from the HTTP date of now (`Sun, 06 Dec 2026 03:59:23 GMT`).
pub(crate) fn today_utc() -> String {
    date_of(&httpdate::fmt_http_date(SystemTime::now())).unwrap_or_default()
}

/// `YYYY-MM-DD` of an IMF-fixdate.
fn date_of(http_date: &str) -> Option<String> {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let mut parts = http_date.split_whitespace().skip(1);
    let (day, month, year) = (parts.next()?, parts.next()?, parts.next()?);
    let month = MONTHS.iter().position(|name| *name == month)? + 1;
    Some(format!("{year}-{month:02}-{day}"))
}

/// The per-day sums of server 3c93ebaf1c, shared by every task of a worker.
/// Each report sends its rows' sums under the lock, so two tasks' reports
/// reach the server in the order of their sums (a later, larger sum never
/// lands before a smaller one).
#[derive(Debug, Default)]
pub(crate) struct DailyUsage {
    sums: Mutex<HashMap<(RuntimeId, String), Vec<TaskUsage>>>,
}

impl DailyUsage {
    /// Adds `usage` to the runtime's sums of today and reports the sums of
    /// the rows it touched.
    pub(crate) async fn report(
        &self,
        api: &dyn DaemonApi,
        retry: &RetryPolicy,
        runtime_id: &RuntimeId,
        runtime_provider: &str,
        usage: &[TaskUsage],
    ) -> Result<usize, Error> {
        let date = today_utc();
        let mut sums = self.sums.lock().await;
        // Yesterday's rows are final: keep only today's.
        sums.retain(|(_, day), _| *day == date);
        let rows = sums.entry((runtime_id.clone(), date.clone())).or_default();
        let touched = accumulate(rows, usage, runtime_provider);
        let entries: Vec<UsageEntry> = rows
            .iter()
            .filter(|row| touched.iter().any(|(provider, model)| (&row.provider, &row.model) == (provider, model)))
            .map(|row| UsageEntry::of_day(date.as_str(), row))
            .collect();
        retry.run(Endpoint::ReportUsage, || api.report_usage(runtime_id, entries.as_slice())).await?;
        Ok(entries.len())
    }
}

/// One task's sums per (provider, model), for HEAD 1cc46b2697's task route.
#[derive(Debug, Default)]
pub(crate) struct TaskUsageSums {
    sums: std::sync::Mutex<Vec<TaskUsage>>,
}

impl TaskUsageSums {
    /// Adds `usage` to the task's sums; returns the sums of the rows it
    /// touched, to send. Kept whether or not the send succeeds: the next
    /// report carries them.
    pub(crate) fn add(&self, usage: &[TaskUsage], runtime_provider: &str) -> Vec<TaskUsage> {
        let mut sums = self.sums.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let touched = accumulate(&mut sums, usage, runtime_provider);
        sums.iter()
            .filter(|row| touched.iter().any(|(provider, model)| (&row.provider, &row.model) == (provider, model)))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_date_of_an_http_date_is_its_day() {
        assert_eq!(date_of("Sun, 06 Dec 2026 03:59:23 GMT").as_deref(), Some("2026-12-06"));
        assert_eq!(date_of("Thu, 01 Jan 1970 00:00:00 GMT").as_deref(), Some("1970-01-01"));
        assert_eq!(date_of("nonsense"), None);
        let today = today_utc();
        assert_eq!((today.len(), &today[4..5], &today[7..8]), (10, "-", "-"));
    }

    #[test]
    fn increments_add_up_per_provider_and_model() {
        let used = |provider: &str, model: &str, input| TaskUsage {
            provider: provider.into(),
            model: model.into(),
            input_tokens: input,
            cost_usd_ticks: input * 10,
            ..TaskUsage::default()
        };
        let mut totals = Vec::new();
        accumulate(&mut totals, &[used("Claude", "opus", 100), used("", "opus", 20)], "claude");
        let touched = accumulate(&mut totals, &[used("claude", "sonnet", 5)], "claude");
        assert_eq!(touched, [("claude".to_owned(), "sonnet".to_owned())]);
        assert_eq!(totals.len(), 2);
        assert_eq!((totals[0].input_tokens, totals[0].cost_usd_ticks), (120, 1200));
    }
}
