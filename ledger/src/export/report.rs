//! `report.html`: the bundle for a person. One self-contained file (inline style, no script,
//! no request to anywhere; links only to anchors inside it), printable: the scope, how to
//! verify the bundle, the controls table, the answers, the alerts with their evidence and the
//! timeline. Rendered by minijinja from `report.html.j2`, escaping every value as HTML.

use minijinja::{context, Environment};
use serde::Serialize;
use serde_json::Value;

/// At most this many timeline rows (the first and last halves); `entries.ndjson` has all.
const TIMELINE_ROWS: usize = 2000;

const TEMPLATE: &str = include_str!("report.html.j2");

/// One entry as the report shows it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct EventRow {
    seq: u64,
    time: String,
    kind: String,
    actor: String,
    /// What it is about (only for the rows the timeline shows).
    what: String,
}

/// Whether the timeline shows entry `n` (from 0) of `total`.
pub(super) fn shown(n: usize, total: usize) -> bool {
    total <= TIMELINE_ROWS || n < TIMELINE_ROWS / 2 || n >= total - TIMELINE_ROWS / 2
}

/// Entry `seq` with its canonical event bytes, for the report; `what` is read only for rows
/// the timeline shows (reading every event whole costs more than the rest of the export).
pub(super) fn row(seq: u64, event: &[u8], show: bool) -> EventRow {
    #[derive(serde::Deserialize)]
    struct Head<'a> {
        #[serde(rename = "type", borrow)]
        kind: std::borrow::Cow<'a, str>,
        #[serde(borrow)]
        time: std::borrow::Cow<'a, str>,
        #[serde(borrow)]
        actor: Option<std::borrow::Cow<'a, str>>,
    }
    let head = serde_json::from_slice::<Head<'_>>(event).ok();
    let what =
        if show { serde_json::from_slice::<Value>(event).map(|e| what(&e)).unwrap_or_default() } else { String::new() };
    EventRow {
        seq,
        time: head.as_ref().map(|h| h.time.to_string()).unwrap_or_default(),
        kind: head.as_ref().map(|h| h.kind.to_string()).unwrap_or_default(),
        actor: head.as_ref().and_then(|h| h.actor.as_ref()).map(|a| a.to_string()).unwrap_or_default(),
        what,
    }
}

#[derive(Serialize)]
struct Control {
    framework: &'static str,
    control: &'static str,
    asks: &'static str,
    evidence: String,
    gaps: Vec<String>,
}

fn text(v: &Value, pointer: &str) -> Option<String> {
    v.pointer(pointer).and_then(Value::as_str).map(str::to_string)
}

/// What an event is about, in a phrase.
fn what(event: &Value) -> String {
    let data = event.get("data").cloned().unwrap_or(Value::Null);
    let artifact = |a: &Value| {
        Some(format!("{}/{}@{}", a.get("kind")?.as_str()?, a.get("name")?.as_str()?, a.get("version")?.as_str()?))
    };
    let mut parts = Vec::new();
    if let Some(a) = data.get("artifact").and_then(artifact) {
        parts.push(a);
    }
    if let Some(list) = data.get("artifacts").and_then(Value::as_array) {
        parts.extend(list.iter().filter_map(artifact));
    }
    for (label, pointer) in [
        ("app", "/app"),
        ("env", "/target_env"),
        ("gate", "/gate"),
        ("result", "/result"),
        ("decision", "/decision"),
        ("job", "/job_id"),
        ("batch", "/batch"),
        ("version", "/version"),
        ("provider", "/provider"),
        ("model", "/model"),
        ("region", "/region"),
        ("data class", "/data_class"),
    ] {
        if let Some(v) = text(&data, pointer) {
            parts.push(format!("{label} {v}"));
        }
    }
    parts.join(", ")
}

fn of_types(events: &[EventRow], types: &[&str]) -> Vec<u64> {
    events.iter().filter(|e| types.contains(&e.kind.as_str())).map(|e| e.seq).collect()
}

fn listed(seqs: &[u64]) -> String {
    match seqs.len() {
        0 => "none".into(),
        n if n <= 12 => seqs.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", "),
        n => format!("{}, … {} in all", seqs[..10].iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", "), n),
    }
}

/// The controls table: which entries evidence each control, and what is missing.
fn controls(events: &[EventRow], alerts: &[Value], with_since: bool) -> Vec<Control> {
    let all: Vec<u64> = events.iter().map(|e| e.seq).collect();
    let requests = of_types(events, &["proxy.request"]);
    let lifecycle =
        of_types(events, &["registry.register", "registry.promote", "pipeline.deploy", "registry.rollback"]);
    let govern = of_types(events, &["registry.policy", "registry.approve", "registry.provider"]);
    let measure = of_types(events, &["pipeline.gate", "registry.sign", "feedback.vet"]);
    let manage = of_types(
        events,
        &["registry.promote", "pipeline.deploy", "registry.rollback", "training.start", "training.finish"],
    );
    let open: Vec<String> = alerts
        .iter()
        .filter(|a| a.get("status").and_then(Value::as_str) == Some("open"))
        .filter_map(|a| Some(format!("open alert {}: {}", a.get("id")?.as_str()?, a.get("title")?.as_str()?)))
        .collect();
    let gap = |cond: bool, text: &str| if cond { vec![text.to_string()] } else { Vec::new() };
    let mut manage_gaps = open.clone();
    manage_gaps.extend(gap(manage.is_empty(), "no promotion, deployment, rollback or training entry in scope"));
    vec![
        Control {
            framework: "EU AI Act",
            control: "Article 12 (record-keeping)",
            asks: "automatic recording of events over the system's lifetime, enough to trace its functioning",
            evidence: format!("{} recorded entries, each proven in the signed log; lifecycle events: {}; usage (gateway requests): {}", all.len(), listed(&lifecycle), listed(&requests)),
            gaps: [gap(lifecycle.is_empty(), "no lifecycle event (registration, promotion, deployment, rollback) in scope"), gap(requests.is_empty(), "no usage record (gateway request) in scope")].concat(),
        },
        Control {
            framework: "EU AI Act",
            control: "Article 19 (automatically generated logs)",
            asks: "logs kept, for at least six months, and shown unaltered",
            evidence: format!(
                "the signed checkpoint and an inclusion proof for each of the {} entries{}",
                all.len(),
                if with_since { "; a consistency proof from the earlier checkpoint given" } else { "" }
            ),
            gaps: gap(!with_since, "no proof that the log was not rewritten since an earlier export: export with --since-checkpoint naming the last bundle's checkpoint"),
        },
        Control {
            framework: "NIST AI RMF",
            control: "GOVERN",
            asks: "policies, accountability and approvals in place and applied",
            evidence: format!("policy versions, approvals and provider routes: {}", listed(&govern)),
            gaps: gap(govern.is_empty(), "no policy, approval or provider-route entry in scope"),
        },
        Control {
            framework: "NIST AI RMF",
            control: "MEASURE",
            asks: "the system evaluated, tested and monitored",
            evidence: format!("gates, signature checks and feedback vetting: {}", listed(&measure)),
            gaps: gap(measure.is_empty(), "no gate, signature check or feedback vetting in scope"),
        },
        Control {
            framework: "NIST AI RMF",
            control: "MANAGE",
            asks: "risks acted on: releases controlled, incidents tracked to resolution",
            evidence: format!("releases, rollbacks and training jobs: {}; {} alerts", listed(&manage), alerts.len()),
            gaps: manage_gaps,
        },
        Control {
            framework: "ISO/IEC 42001",
            control: "Annex A, A.6.2.8 (AI system recording of event logs)",
            asks: "event logs of the AI system recorded and kept",
            evidence: format!("{} entries with their proofs; gateway requests: {}", all.len(), listed(&requests)),
            gaps: gap(requests.is_empty(), "no event of the system in operation (gateway request) in scope"),
        },
    ]
}

/// The report of a bundle whose `answers.json` is `answers` and whose entries are `events`.
pub(super) fn render(
    answers: &Value,
    events: &[EventRow],
    keys: &[String],
    with_since: bool,
) -> Result<String, minijinja::Error> {
    let alerts = answers.get("alerts").and_then(Value::as_array).cloned().unwrap_or_default();
    let omitted = events.len().saturating_sub(TIMELINE_ROWS);
    let rows: Vec<&EventRow> =
        events.iter().enumerate().filter(|(n, _)| shown(*n, events.len())).map(|(_, e)| e).collect();
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    env.add_template("report.html", TEMPLATE)?;
    env.get_template("report.html")?.render(context! {
        scope => answers.get("scope"),
        checkpoint => answers.get("checkpoint"),
        exported_at => answers.get("exported_at"),
        answers => answers.get("answers"),
        alerts => alerts,
        controls => controls(events, &alerts, with_since),
        rows => rows,
        omitted => omitted,
        total => events.len(),
        with_since => with_since,
        keys => keys,
    })
}
