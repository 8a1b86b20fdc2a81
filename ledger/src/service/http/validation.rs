//! HTTP intake's validation: each body is validated on the service's validation threads
//! ([`Validation`], shared with the Kafka source), where its events' origins are made too.

use axum::body::Bytes;
use evidence_ingest::validation::{Validation, ValidationFailed};
use evidence_ingest::{Origin, Record, Verdict};
use evidence_schemas::Validator;

/// The records of `raw`, the events of one request from `token` at `peer`, in order, once a
/// validation thread has validated them; waits for room in the queue first.
pub(super) async fn validate_body(
    validation: &Validation,
    raw: Vec<Bytes>,
    token: String,
    peer: String,
) -> Result<Vec<Record>, ValidationFailed> {
    validation.run(move |validator| validate(validator, raw, &token, &peer)).await
}

/// Each event of a body as a record: validated, or rejected with its bytes, with its origin.
fn validate(validator: &Validator, raw: Vec<Bytes>, token: &str, peer: &str) -> Vec<Record> {
    raw.into_iter()
        .enumerate()
        .map(|(i, bytes)| {
            let origin = Origin::Http { token: token.to_string(), peer: peer.to_string(), item: i as u64 + 1 };
            let verdict = match validator.validate(&bytes) {
                Ok(valid) => Verdict::Valid(Box::new(valid)),
                Err(rejection) => Verdict::Rejected { rejection, raw: bytes.to_vec() },
            };
            Record { origin, verdict }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use evidence_schemas::sample::sample_event;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_body_is_validated_in_order_with_its_origins() {
        let validation = Validation::start(std::sync::Arc::new(Validator::default()), 2).unwrap();
        // More requests at once than the threads and the queue hold: each waits its turn.
        let requests: Vec<_> = (0..16u64)
            .map(|r| {
                let validation = validation.clone();
                tokio::spawn(async move {
                    let bad = Bytes::from_static(b"{\"not\":\"an event\"}");
                    let raw = vec![Bytes::from(sample_event(2 * r)), bad, Bytes::from(sample_event(2 * r + 1))];
                    (r, validate_body(&validation, raw, format!("token-{r}"), "127.0.0.1:1".into()).await.unwrap())
                })
            })
            .collect();
        for request in requests {
            let (r, records) = request.await.unwrap();
            let verdicts: Vec<bool> = records.iter().map(|rec| matches!(rec.verdict, Verdict::Valid(_))).collect();
            assert_eq!(verdicts, [true, false, true], "request {r}: the events' verdicts, in order");
            for (i, record) in records.iter().enumerate() {
                let expected =
                    Origin::Http { token: format!("token-{r}"), peer: "127.0.0.1:1".into(), item: i as u64 + 1 };
                assert_eq!(record.origin, expected);
            }
        }
    }
}
