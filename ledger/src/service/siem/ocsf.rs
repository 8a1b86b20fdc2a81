//! An alert change as an OCSF Detection Finding (class 2004, OCSF 1.5.0), the document the
//! Kafka and HEC sinks send. `ops/SIEM.md` gives the mapping field by field; keep the two in
//! step. Absent values are left out, never `null` (OCSF's schema refuses nulls).

use serde_json::{json, Map, Value};

use crate::governance::outbox::{Activity, Change};
use crate::governance::{Alert, Severity};

/// The OCSF version the documents declare in `metadata.version`.
pub const OCSF_VERSION: &str = "1.5.0";

/// The Detection Finding class.
const CLASS_UID: u64 = 2004;

/// OCSF's severity id for ours.
fn severity_id(s: Severity) -> u8 {
    match s {
        Severity::Low => 2,
        Severity::Medium => 3,
        Severity::High => 4,
        Severity::Critical => 5,
    }
}

/// OCSF's severity caption for ours.
fn severity_caption(s: Severity) -> &'static str {
    match s {
        Severity::Low => "Low",
        Severity::Medium => "Medium",
        Severity::High => "High",
        Severity::Critical => "Critical",
    }
}

/// The finding status a change leaves the alert in: OCSF's id and caption (New while open: no
/// one has triaged it; Resolved once late evidence cured it).
fn status(activity: Activity) -> (u8, &'static str) {
    match activity {
        Activity::Create => (1, "New"),
        Activity::Update => (1, "New"),
        Activity::Close => (4, "Resolved"),
    }
}

fn caption(activity: Activity) -> &'static str {
    match activity {
        Activity::Create => "Create",
        Activity::Update => "Update",
        Activity::Close => "Close",
    }
}

/// Milliseconds since the epoch of an alert's event time.
fn millis(alert: &Alert) -> i64 {
    alert.time.timestamp_millis()
}

/// The change's id, the same on every delivery: the alert's id and the change's number.
pub fn change_uid(change: &Change) -> String {
    format!("{}/{}", change.alert.id, change.number)
}

/// The proving entries as OCSF evidences, each named for the part it plays, and the actors
/// involved, each as an evidence with its user.
fn evidences(origin: &str, a: &Alert) -> Vec<Value> {
    let role = |seq: u64| {
        if seq == a.seq {
            "violating entry"
        } else if a.resolved_by == Some(seq) {
            "resolving entry"
        } else if seq == a.opened_by {
            "opening entry"
        } else {
            "cited entry"
        }
    };
    let mut seqs = a.entries.clone();
    seqs.extend(a.resolved_by);
    seqs.sort_unstable();
    seqs.dedup();
    let mut out: Vec<Value> = seqs
        .into_iter()
        .map(|seq| {
            json!({
                "name": role(seq),
                "uid": format!("{origin}/{seq}"),
                "data": { "log": origin, "seq": seq, "entry": format!("/v1/entries/{seq}") },
            })
        })
        .collect();
    out.extend(a.actors.iter().map(|actor| json!({ "name": "actor", "actor": { "user": { "name": actor } } })));
    out
}

/// What the alert is about, as OCSF resources: the artifact, the app (labelled with its env)
/// and the provider route.
fn resources(a: &Alert) -> Vec<Value> {
    let labels: Vec<String> =
        a.app.iter().map(|x| format!("app:{x}")).chain(a.env.iter().map(|x| format!("env:{x}"))).collect();
    let mut out = Vec::new();
    if let Some(artifact) = &a.artifact {
        let (kind, rest) = artifact.split_once('/').unwrap_or(("artifact", artifact));
        let (name, version) = rest.rsplit_once('@').unwrap_or((rest, ""));
        let mut r = json!({ "uid": artifact, "name": name, "type": kind, "labels": labels });
        if !version.is_empty() {
            r["version"] = json!(version);
        }
        out.push(r);
    }
    if let Some(app) = &a.app {
        out.push(json!({ "uid": format!("app/{app}"), "name": app, "type": "app", "labels": labels }));
    }
    if let Some(route) = &a.route {
        out.push(json!({ "uid": route, "name": route, "type": "provider route", "labels": labels }));
    }
    out
}

/// What has no OCSF home: the ledger's own references, and a fold's detail.
fn unmapped(origin: &str, change: &Change) -> Value {
    let a = &change.alert;
    let mut ledger = Map::new();
    ledger.insert("origin".into(), json!(origin));
    ledger.insert("change".into(), json!(change.number));
    ledger.insert("seq".into(), json!(a.seq));
    ledger.insert("opened_by".into(), json!(a.opened_by));
    ledger.insert("entries".into(), json!(a.entries));
    if let Some(by) = a.resolved_by {
        ledger.insert("resolved_by".into(), json!(by));
    }
    if let Some(fold) = &a.fold {
        ledger.insert("fold".into(), serde_json::to_value(fold).expect("a fold serializes"));
    }
    json!({ "evidence_ledger": ledger })
}

/// OCSF's `metadata`: the version, the product, the change's id and order, the log.
fn metadata(origin: &str, change: &Change, logged_ms: i64) -> Value {
    let a = &change.alert;
    let mut labels = vec![format!("origin:{origin}")];
    labels.extend(a.app.iter().map(|x| format!("app:{x}")));
    labels.extend(a.env.iter().map(|x| format!("env:{x}")));
    json!({
        "version": OCSF_VERSION,
        "profiles": ["security_control"],
        "product": {
            "name": "Evidence Ledger",
            "vendor_name": "Evidence Ledger",
            "uid": "evidence-ledger",
            "version": env!("CARGO_PKG_VERSION"),
        },
        "uid": change_uid(change),
        "correlation_uid": a.id,
        "log_name": origin,
        "logged_time": logged_ms,
        "sequence": change.number,
        "labels": labels,
    })
}

/// OCSF's `finding_info`: the alert's id, title, explanation, rule and times.
fn finding_info(a: &Alert) -> Value {
    json!({
        "uid": a.id,
        "title": a.title,
        "desc": a.explanation,
        "types": [a.rule.name()],
        "created_time": millis(a),
        "first_seen_time": millis(a),
        "data_sources": ["evidence-ledger"],
        "analytic": {
            "type_id": 1,
            "type": "Rule",
            "uid": a.rule.name(),
            "name": a.title,
            "version": a.policy_version,
        },
    })
}

/// The change as an OCSF Detection Finding, for the log named `origin`, logged at
/// `logged_ms` (milliseconds since the epoch).
pub fn document(origin: &str, change: &Change, logged_ms: i64) -> Value {
    let a = &change.alert;
    let activity = change.activity;
    let (status_id, status_caption) = status(activity);
    let mut doc = json!({
        "class_uid": CLASS_UID,
        "class_name": "Detection Finding",
        "category_uid": 2,
        "category_name": "Findings",
        "activity_id": activity as u8,
        "activity_name": caption(activity),
        "type_uid": CLASS_UID * 100 + activity as u64,
        "type_name": format!("Detection Finding: {}", caption(activity)),
        "severity_id": severity_id(a.severity),
        "severity": severity_caption(a.severity),
        "status_id": status_id,
        "status": status_caption,
        "is_alert": true,
        "confidence_id": 3,
        "confidence": "High",
        "time": millis(a),
        "message": a.explanation,
        "metadata": metadata(origin, change, logged_ms),
        "finding_info": finding_info(a),
        "policy": {
            "uid": format!("policy@{}", a.policy_version),
            "name": "AI delivery governance policy",
            "version": a.policy_version,
            "is_applied": true,
        },
        "evidences": evidences(origin, a),
        "unmapped": unmapped(origin, change),
    });
    let resources = resources(a);
    if !resources.is_empty() {
        doc["resources"] = json!(resources);
    }
    if let Some(fold) = &a.fold {
        doc["count"] = json!(fold.occurrences);
    }
    if let Some(why) = &a.resolution {
        doc["status_detail"] = json!(why);
    }
    doc
}
