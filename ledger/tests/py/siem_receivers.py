"""What the SIEM receivers got, read and checked by code that shares nothing with the ledger.

Usage: siem_receivers.py [--kafka BOOTSTRAP TOPIC] [--hec FILE] [--syslog FILE]

- Kafka: every message of TOPIC, read from the start to the end offsets with kafka-python.
- HEC: FILE holds one HEC event object a line, as the harness's collector received them.
- Syslog: FILE is rsyslog's output, one received message a line, JSON-escaped (%rawmsg:::json%).

Every OCSF document (Kafka messages, HEC events) is validated as an OCSF 1.5.0 Detection
Finding with ocsf-json-schema (the official schema export) and jsonschema; every syslog
message is parsed as RFC 5424 with syslog-rfc5424-parser and must carry its structured data.
Prints one JSON document: {"kafka": [...], "hec": [...], "syslog": [...], "errors": [...]},
each receiver's list in the order received, each item {"log", "id", "activity", "status",
"change", "rule"}.
"""

import json
import sys
from functools import lru_cache

from jsonschema import Draft202012Validator
from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema
from syslog_rfc5424_parser import SyslogMessage

OCSF_VERSION = "1.5.0"
ACTIVITIES = {1: "create", 2: "update", 3: "close"}
SD_ID = "alert@32473"


@lru_cache(maxsize=None)
def validator(profiles):
    ocsf = OcsfJsonSchemaEmbedded(get_ocsf_schema(version=OCSF_VERSION))
    schema = ocsf.get_class_schema(class_name="detection_finding", profiles=list(profiles))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def ocsf_errors(doc):
    profiles = tuple(sorted(doc.get("metadata", {}).get("profiles", [])))
    errors = [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in validator(profiles).iter_errors(doc)]
    if doc.get("class_uid") != 2004:
        errors.append("class_uid is not 2004")
    if isinstance(doc.get("activity_id"), int) and doc.get("type_uid") != 200400 + doc["activity_id"]:
        errors.append("type_uid is not class_uid * 100 + activity_id")
    if doc.get("metadata", {}).get("version") != OCSF_VERSION:
        errors.append(f"metadata.version is not {OCSF_VERSION}")
    if doc.get("activity_id") == 3 and doc.get("status_id") != 4:
        errors.append("a Close that does not leave the finding Resolved")
    return errors


def from_ocsf(doc, where, errors):
    for e in ocsf_errors(doc)[:5]:
        errors.append(f"{where}: {e}")
    return {
        "log": doc["metadata"]["log_name"],
        "id": doc["finding_info"]["uid"],
        "activity": ACTIVITIES.get(doc.get("activity_id"), "?"),
        "status": "resolved" if doc.get("status_id") == 4 else "open",
        "change": doc["metadata"]["sequence"],
        "rule": doc["finding_info"]["analytic"]["uid"],
    }


def read_kafka(bootstrap, topic, errors):
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                             auto_offset_reset="earliest", consumer_timeout_ms=2000)
    partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    ends = consumer.end_offsets(partitions)
    out = []
    idle = 0
    while any(consumer.position(tp) < ends[tp] for tp in partitions) and idle < 30:
        batch = consumer.poll(timeout_ms=1000)
        idle = 0 if batch else idle + 1
        for tp, records in sorted(batch.items(), key=lambda kv: kv[0].partition):
            for r in records:
                doc = json.loads(r.value)
                item = from_ocsf(doc, f"kafka {tp.partition}/{r.offset}", errors)
                if r.key is None or r.key.decode() != item["id"]:
                    errors.append(f"kafka {tp.partition}/{r.offset}: keyed {r.key!r}, not by its alert id")
                out.append(item)
    if idle >= 30:
        errors.append("kafka: the end offsets were not reached")
    consumer.close()
    return out


def read_hec(path, errors):
    out = []
    for n, line in enumerate(open(path, encoding="utf-8"), 1):
        if not line.strip():
            continue
        wrapper = json.loads(line)
        if wrapper.get("sourcetype") != "ocsf:detection_finding" or not isinstance(wrapper.get("time"), (int, float)):
            errors.append(f"hec line {n}: not a HEC event object with time and sourcetype")
        out.append(from_ocsf(wrapper["event"], f"hec line {n}", errors))
    return out


def read_syslog(path, errors):
    out = []
    for n, line in enumerate(open(path, encoding="utf-8"), 1):
        line = line.rstrip("\n")
        if not line:
            continue
        raw = json.loads('"' + line + '"')
        try:
            message = SyslogMessage.parse(raw).as_dict()
        except Exception as e:  # the parser's own exception types vary by rule
            errors.append(f"syslog line {n}: not RFC 5424: {e}")
            continue
        sd = message.get("sd", {}).get(SD_ID)
        if not sd:
            errors.append(f"syslog line {n}: no {SD_ID} structured data")
            continue
        missing = [k for k in ("id", "rule", "severity", "policy", "entries", "status", "activity", "change", "origin") if k not in sd]
        if missing:
            errors.append(f"syslog line {n}: structured data lacks {missing}")
            continue
        if message["version"] != 1 or not message["msg"].lstrip("\ufeff"):
            errors.append(f"syslog line {n}: version or MSG wrong")
        if message["msgid"] != f"alert.{sd['activity']}":
            errors.append(f"syslog line {n}: MSGID {message['msgid']} does not name the change")
        out.append({"log": sd["origin"], "id": sd["id"], "activity": sd["activity"], "status": sd["status"],
                    "change": int(sd["change"]), "rule": sd["rule"]})
    return out


def main(argv):
    errors, result = [], {}
    i = 0
    while i < len(argv):
        if argv[i] == "--kafka":
            result["kafka"] = read_kafka(argv[i + 1], argv[i + 2], errors)
            i += 3
        elif argv[i] == "--hec":
            result["hec"] = read_hec(argv[i + 1], errors)
            i += 2
        elif argv[i] == "--syslog":
            result["syslog"] = read_syslog(argv[i + 1], errors)
            i += 2
        else:
            sys.exit(f"unknown argument {argv[i]}")
    result["errors"] = errors
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
