//! `artifact.substituted`: a digest that is not the registered one, where the registry's
//! word is contradicted: a re-registration, a deploy or rollback, or a gateway request served
//! by a model digest other than the one live for its app. Each judged on the registrations
//! and deploys dated at or before it.

use evidence_schemas::{ArtifactKind, ArtifactRef, Env, ProxyRequest};

use super::{short, Hit, How, Judge};
use crate::governance::alert::Rule;
use crate::governance::model::{ArtifactView, Registration};

/// A registration whose digest is not the first registration's.
pub(super) fn reregistered(j: &mut Judge<'_>, view: &ArtifactView, reg: &Registration) {
    let Some(first) = view.registered_at(reg.cite.at).filter(|f| f.digest != reg.digest) else { return };
    let a = ArtifactRef { digest: reg.digest.clone(), ..view.artifact.clone() };
    let text = format!(
        "{a} was registered again by {} with digest {}, but it was registered at entry {} with digest {}.",
        j.actor(),
        short(&reg.digest),
        first.cite.seq,
        short(&first.digest)
    );
    let actors = [Some(j.actor().to_string()), first.cite.actor.clone()].into_iter().flatten();
    let alert = j.alert(Rule::ArtifactSubstituted, &a.to_string(), vec![first.cite.seq], text);
    j.out.push(alert.about(None, None, Some(&a)).by(actors));
}

/// A deployed or rolled-back artifact whose digest is not the registered one.
pub(super) fn moved(j: &mut Judge<'_>, a: &ArtifactRef, env: &Env, app: &str, how: How) {
    let reg = j.st.artifact(a).and_then(|v| v.registered_at(j.at)).filter(|reg| reg.digest != a.digest);
    let Some(reg) = reg else { return };
    let verb = if how == How::Rollback { "rolled back to" } else { "deployed" };
    let text = format!(
        "{a} was {verb} in {app} in {env} by {} with digest {}, but it was registered at entry {} with digest {}.",
        j.actor(),
        short(&a.digest),
        reg.cite.seq,
        short(&reg.digest)
    );
    let alert = j.alert(Rule::ArtifactSubstituted, &a.to_string(), vec![reg.cite.seq], text);
    j.out.push(alert.about(Some(app), Some(env), Some(a)).by([j.actor().to_string()]));
}

/// What a request's model digest should have been at its time: (the entries saying so, the
/// sentence, the artifact), or `None` when the digest is the expected one or nothing is
/// known.
fn expected_model(j: &Judge<'_>, d: &ProxyRequest, env: &Env) -> Option<(Vec<u64>, String, Option<ArtifactRef>)> {
    let digest = d.model_digest.as_ref()?;
    // The live model of that name, or else the only live model.
    let expected = j.st.live(&d.app, &env.0).and_then(|l| {
        l.slot_at(j.at, ArtifactKind::Model, &d.model).or_else(|| {
            let mut models = l.named_by(j.at).filter(|a| a.kind == ArtifactKind::Model);
            match (models.next(), models.next()) {
                (Some(only), None) => l.slot_at(j.at, ArtifactKind::Model, &only.name),
                _ => None,
            }
        })
    });
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
    let mut versions: Vec<(&ArtifactView, &Registration)> =
        j.st.versions(ArtifactKind::Model, &d.model).filter_map(|v| Some((v, v.registered_at(j.at)?))).collect();
    versions.sort_by_key(|(v, _)| v.artifact.version.clone());
    if versions.is_empty() || versions.iter().any(|(_, r)| r.digest == *digest) {
        return None;
    }
    let listed: Vec<String> =
        versions.iter().map(|(v, r)| format!("{} {}", v.artifact.version, short(&r.digest))).collect();
    let text =
        format!("no registered version of model {} has that digest (registered: {})", d.model, listed.join(", "));
    let mut entries: Vec<u64> = versions.iter().map(|(_, r)| r.cite.seq).collect();
    entries.sort_unstable();
    Some((entries, text, None))
}

/// A request whose model digest is not the model live for its app at its time (or, with none
/// live, not any registered version of its model). Folds per (app, env, expected model).
pub(super) fn served<'a>(j: Judge<'a>, d: &'a ProxyRequest, env: &'a Env) -> Option<Hit<'a>> {
    let digest = d.model_digest.as_ref()?;
    let (entries, expected_text, artifact) = expected_model(&j, d, env)?;
    let about = match &artifact {
        Some(a) => a.to_string(),
        None => format!("model {}", d.model),
    };
    let subject = format!("{}|{env}|{about}", d.app);
    let fold = subject.clone();
    Some(Hit {
        rule: Rule::ArtifactSubstituted,
        subject,
        variant: digest.0.clone(),
        alert: Box::new(move || {
            let text = format!(
                "Request {} of {} in {env} was served by {} with model digest {}, but {expected_text}; later requests served otherwise than expected are counted in this alert.",
                d.request_id,
                d.app,
                d.provider,
                short(digest)
            );
            j.alert(Rule::ArtifactSubstituted, &fold, entries, text).about(Some(&d.app), Some(env), artifact.as_ref())
        }),
    })
}
