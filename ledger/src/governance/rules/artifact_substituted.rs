//! `artifact.substituted`: a digest that is not the registered one, where the registry's
//! word is contradicted: a re-registration, a deploy or rollback, or a gateway request served
//! by a model digest other than the one live for its app.

use evidence_schemas::{ArtifactKind, ArtifactRef, Env, ProxyRequest};

use super::{short, Check, How};
use crate::governance::alert::Rule;
use crate::governance::model::{ArtifactView, Registration};

/// The registration `a` contradicts: `a`'s version registered with another digest.
fn contradicted<'s>(c: &Check<'s>, a: &ArtifactRef) -> Option<&'s Registration> {
    c.st.artifact(a).and_then(|v| v.registered.as_ref()).filter(|reg| reg.digest != a.digest)
}

/// A re-registration with another digest.
pub(super) fn reregistered(c: &mut Check<'_>, a: &ArtifactRef) {
    let Some(reg) = contradicted(c, a) else { return };
    let text = format!(
        "{a} was registered again by {} with digest {}, but it was registered at entry {} with digest {}.",
        c.actor(),
        short(&a.digest),
        reg.cite.seq,
        short(&reg.digest)
    );
    let actors = [Some(c.actor().to_string()), reg.cite.actor.clone()].into_iter().flatten();
    let alert = c.alert(Rule::ArtifactSubstituted, &a.to_string(), vec![reg.cite.seq], text);
    c.out.push(alert.about(None, None, Some(a)).by(actors));
}

/// A deployed or rolled-back artifact whose digest is not the registered one.
pub(super) fn moved(c: &mut Check<'_>, a: &ArtifactRef, env: &Env, app: &str, how: How) {
    let Some(reg) = contradicted(c, a) else { return };
    let verb = if how == How::Rollback { "rolled back to" } else { "deployed" };
    let text = format!(
        "{a} was {verb} in {app} in {env} by {} with digest {}, but it was registered at entry {} with digest {}.",
        c.actor(),
        short(&a.digest),
        reg.cite.seq,
        short(&reg.digest)
    );
    let alert = c.alert(Rule::ArtifactSubstituted, &a.to_string(), vec![reg.cite.seq], text);
    c.out.push(alert.about(Some(app), Some(env), Some(a)).by([c.actor().to_string()]));
}

/// What a request's model digest should have been: (the entries saying so, the sentence,
/// the artifact), or `None` when the digest is the expected one or nothing is known.
fn expected_model(c: &Check<'_>, d: &ProxyRequest, env: &Env) -> Option<(Vec<u64>, String, Option<ArtifactRef>)> {
    let digest = d.model_digest.as_ref()?;
    let live: Vec<_> =
        c.st.live(&d.app, &env.0)
            .map(|l| l.slots.values().filter(|s| s.artifact.kind == ArtifactKind::Model).collect())
            .unwrap_or_default();
    let expected =
        live.iter().find(|s| s.artifact.name == d.model).or(if live.len() == 1 { live.first() } else { None });
    if let Some(s) = expected {
        if s.artifact.digest == *digest {
            return None;
        }
        let text = format!(
            "the model live there is {} with digest {} (entry {})",
            s.artifact,
            short(&s.artifact.digest),
            s.cite.seq
        );
        return Some((vec![s.cite.seq], text, Some(s.artifact.clone())));
    }
    let mut versions: Vec<&ArtifactView> =
        c.st.versions(ArtifactKind::Model, &d.model).filter(|v| v.registered.is_some()).collect();
    versions.sort_by_key(|v| v.registered.as_ref().map(|r| r.cite.seq));
    if versions.is_empty() || versions.iter().any(|v| v.artifact.digest == *digest) {
        return None;
    }
    let listed: Vec<String> =
        versions.iter().map(|v| format!("{} {}", v.artifact.version, short(&v.artifact.digest))).collect();
    let text =
        format!("no registered version of model {} has that digest (registered: {})", d.model, listed.join(", "));
    Some((versions.iter().filter_map(|v| v.registered.as_ref()).map(|r| r.cite.seq).collect(), text, None))
}

/// A request whose model digest is not the model live for its app (or, with none live, not
/// any registered version of its model).
pub(super) fn served(c: &mut Check<'_>, d: &ProxyRequest, env: &Env) {
    let Some(digest) = &d.model_digest else { return };
    let Some((entries, expected_text, artifact)) = expected_model(c, d, env) else { return };
    let violation = format!("model|{}|{env}|{digest}", d.app);
    if c.st.reported(violation.as_bytes()) {
        return;
    }
    let text = format!(
        "Request {} of {} in {env} was served by {} with model digest {}, but {expected_text}; later requests with it are not alerted again.",
        d.request_id,
        d.app,
        d.provider,
        short(digest)
    );
    let alert = c.alert(Rule::ArtifactSubstituted, &violation, entries, text);
    c.out.push(alert.about(Some(&d.app), Some(env), artifact.as_ref()).once(violation));
}
