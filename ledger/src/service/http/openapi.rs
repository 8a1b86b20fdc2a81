//! `GET /openapi.json`: the OpenAPI 3.1 document, generated, never written by hand. The
//! operations come from the handlers' `#[utoipa::path]` attributes (method, path, parameters,
//! bodies, statuses); the schemas of the bodies come from the Rust types themselves through
//! schemars (JSON Schema 2020-12, which OpenAPI 3.1 uses as it is), placed under
//! `components/schemas` with the names utoipa refers to them by. Written by hand here: only
//! that bridge (utoipa's own schema derive would duplicate the schemars derive the contract's
//! types already carry, and could disagree with serde where schemars follows it), and the
//! bearer security scheme.

use std::borrow::Cow;
use std::sync::OnceLock;

use serde_json::{json, Value};
use utoipa::openapi::{Ref, RefOr, Schema};
use utoipa::OpenApi as _;

use super::audit::{self, GateRequest, PolicyPublished, PolicyRequest};
use super::catalog;
use super::export;
use super::intake::{self, IntakeAnswer};
use super::records::{self, EntriesPage, EntryAnswer, IntegrityAnswer, QuarantinePage, ServiceStatus};
use super::stream;
use super::{AlertsAnswer, ArtifactAnswer, JobAnswer, Problem, RequestsAnswer, StateAnswer};
use crate::log::{ConsistencyProof, InclusionProof};
use crate::query::{AppList, ArtifactList, TrainingDecision};

/// Makes each type a utoipa schema by reference to its schemars definition.
macro_rules! schemars_components {
    ($($t:ty),* $(,)?) => {
        $(
            impl utoipa::PartialSchema for $t {
                fn schema() -> RefOr<Schema> {
                    RefOr::Ref(Ref::from_schema_name(<$t as schemars::JsonSchema>::schema_name()))
                }
            }

            impl utoipa::ToSchema for $t {
                fn name() -> Cow<'static, str> {
                    <$t as schemars::JsonSchema>::schema_name()
                }
            }
        )*

        /// The JSON Schema of every body type, and of every type they use, by name.
        fn definitions() -> serde_json::Map<String, Value> {
            let mut settings = schemars::generate::SchemaSettings::draft2020_12();
            settings.definitions_path = "/components/schemas".into();
            // What the API sends: a field serde skips when empty is optional. The two request
            // bodies are written so that what they accept is what they would send.
            settings.contract = schemars::generate::Contract::Serialize;
            let mut generator = settings.into_generator();
            $( generator.subschema_for::<$t>(); )*
            generator.take_definitions(true)
        }
    };
}

schemars_components!(
    Problem,
    IntakeAnswer,
    ServiceStatus,
    EntryAnswer,
    EntriesPage,
    QuarantinePage,
    IntegrityAnswer,
    InclusionProof,
    ConsistencyProof,
    StateAnswer,
    ArtifactAnswer,
    JobAnswer,
    AlertsAnswer,
    RequestsAnswer,
    TrainingDecision,
    GateRequest,
    PolicyRequest,
    PolicyPublished,
    ArtifactList,
    AppList,
);

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Evidence Ledger API",
        description = "The evidence ledger of AI delivery: events in, audit answers, proofs and alerts out. Every route but /healthz and /readyz needs a bearer token whose role allows it: reader (every GET, the training gate), producer (POST /v1/events), admin (everything). Errors are RFC 9457 problem details."
    ),
    paths(
        super::healthz,
        super::readyz,
        super::metrics_text,
        openapi_json,
        intake::post_events,
        records::status,
        records::checkpoint,
        records::entries,
        records::entry,
        records::inclusion,
        records::consistency,
        records::quarantine,
        records::integrity,
        audit::state,
        audit::artifact,
        audit::requests,
        audit::training,
        audit::alerts,
        stream::alert_stream,
        export::export_bundle,
        audit::training_gate,
        audit::publish,
        catalog::artifacts,
        catalog::apps,
    )
)]
struct ApiDoc;

/// The document, made once.
pub(super) fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serializes");
        doc["components"]["schemas"] = Value::Object(definitions());
        doc["components"]["securitySchemes"] =
            json!({ "bearer": { "type": "http", "scheme": "bearer", "description": "A token from `evidence token create`." } });
        doc["security"] = json!([{ "bearer": [] }]);
        refusals(&mut doc);
        doc
    })
}

/// Every operation but the open ones needs a token: each gets the bearer requirement's two
/// refusals here, in one place, rather than in every handler's attribute.
fn refusals(doc: &mut Value) {
    let refusal = |description: &str| {
        json!({ "description": description,
                "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/ProblemDetails" } } } })
    };
    let Some(paths) = doc["paths"].as_object_mut() else { return };
    for (path, item) in paths {
        let Some(operations) = item.as_object_mut() else { continue };
        for operation in operations.values_mut() {
            if path == "/healthz" || path == "/readyz" {
                operation["security"] = json!([]);
                continue;
            }
            let unknown = if path == "/metrics" {
                "No token, or an unknown one (unless the operator opened /metrics)."
            } else {
                "No token, or one this ledger did not issue."
            };
            operation["responses"]["401"] = refusal(unknown);
            operation["responses"]["403"] = refusal("The token's role does not allow this route.");
        }
    }
}

/// The OpenAPI 3.1 document of this API.
#[utoipa::path(get, path = "/openapi.json", tag = "service", responses((status = 200, description = "The OpenAPI document.", content_type = "application/json")))]
pub(super) async fn openapi_json() -> axum::Json<&'static Value> {
    axum::Json(document())
}
