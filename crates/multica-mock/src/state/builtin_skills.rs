//! The skills built into server HEAD 1cc46b2697's binary (§5): every HEAD
//! claim carries them after the agent's workspace skills, inline (`id: ""`)
//! or, with `skill-bundles-v1`, as `builtin:<name>` references; the
//! skill-bundles/resolve route answers their content.
//!
//! The server ships them as data, and so does the fake:
//! `builtin_skills.json` holds each skill's name, content and files as the
//! recorded HEAD server answered them. A file's `sha256` and every
//! `size_bytes` are computed from that content (as the recordings show); the
//! bundle `hash` is stored as recorded, since no formula over the content
//! found so far reproduces it.

use std::sync::OnceLock;

use multica_api::{Skill, SkillBundle, SkillBundleFile, SkillFile, SkillRef, SkillRefFile, SkillSource};
use serde::Deserialize;

use super::head::sha256_hex;

/// One built-in skill as `builtin_skills.json` stores it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BuiltinSkill {
    name: String,
    /// `sha256:<64 hex>` as the server answers it.
    hash: String,
    content: String,
    #[serde(default)]
    files: Vec<SkillFile>,
}

/// The built-in skills, in the order the server lists them.
pub(super) fn builtin_skills() -> &'static [BuiltinSkill] {
    static SKILLS: OnceLock<Vec<BuiltinSkill>> = OnceLock::new();
    // A unit test checks the data file; an empty list is the safe fallback.
    SKILLS.get_or_init(|| serde_json::from_str(include_str!("../builtin_skills.json")).unwrap_or_default())
}

/// The reference ID of a built-in skill.
fn builtin_id(name: &str) -> String {
    format!("builtin:{name}")
}

fn size_of(text: &str) -> i64 {
    i64::try_from(text.len()).unwrap_or(i64::MAX)
}

impl BuiltinSkill {
    /// The skill inline, as a claim without `skill-bundles-v1` carries it.
    pub(super) fn inline(&self) -> Skill {
        let mut skill = Skill::default();
        skill.id = Some(String::new());
        skill.name = self.name.clone();
        skill.content = self.content.clone();
        skill.files = self.files.clone();
        skill
    }

    /// The skill by reference: its files' digests, the bundle's hash and
    /// total size (content plus files).
    pub(super) fn reference(&self) -> SkillRef {
        let mut reference = SkillRef::default();
        reference.id = builtin_id(&self.name);
        reference.source = SkillSource::Builtin;
        reference.name = self.name.clone();
        reference.hash = self.hash.clone();
        reference.size_bytes = size_of(&self.content) + self.files.iter().map(|f| size_of(&f.content)).sum::<i64>();
        reference.file_count = i64::try_from(self.files.len()).unwrap_or(i64::MAX);
        reference.files = self
            .files
            .iter()
            .map(|f| {
                let mut file = SkillRefFile::default();
                file.path = f.path.clone();
                file.sha256 = format!("sha256:{}", sha256_hex(f.content.as_bytes()));
                file.size_bytes = size_of(&f.content);
                file
            })
            .collect();
        reference
    }

    /// The skill's content as skill-bundles/resolve answers it.
    pub(super) fn bundle(&self) -> SkillBundle {
        bundle(self.reference(), &self.content, &self.files)
    }
}

/// A skill's bundle as skill-bundles/resolve answers it: its reference's
/// identity, hash and sizes with the content and files themselves.
pub(super) fn bundle(reference: SkillRef, content: &str, files: &[SkillFile]) -> SkillBundle {
    let mut bundle = SkillBundle::default();
    bundle.id = reference.id;
    bundle.source = reference.source;
    bundle.name = reference.name;
    bundle.description = reference.description;
    bundle.hash = reference.hash;
    bundle.size_bytes = reference.size_bytes;
    bundle.content = content.to_owned();
    bundle.files = files
        .iter()
        .zip(reference.files)
        .map(|(file, file_ref)| {
            let mut bundle_file = SkillBundleFile::default();
            bundle_file.path = file.path.clone();
            bundle_file.content = file.content.clone();
            bundle_file.sha256 = file_ref.sha256;
            bundle_file.size_bytes = file_ref.size_bytes;
            bundle_file
        })
        .collect();
    bundle
}

/// The built-in skill a `builtin:<name>` reference names.
pub(super) fn find_builtin(id: &str) -> Option<&'static BuiltinSkill> {
    builtin_skills().iter().find(|s| builtin_id(&s.name) == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_file_holds_the_nine_built_in_skills() {
        let names: Vec<&str> = builtin_skills().iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names.len(), 9, "{names:?}");
        assert!(names.contains(&"multica-working-on-issues"));
        for skill in builtin_skills() {
            let hex = skill.hash.strip_prefix("sha256:").unwrap_or_default();
            assert!(hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()), "{}", skill.name);
        }
    }

    #[test]
    fn a_reference_names_the_skill_and_sizes_its_content() {
        let skill = find_builtin("builtin:multica-autopilots").expect("a built-in skill");
        let reference = skill.reference();
        assert_eq!(reference.source, SkillSource::Builtin);
        assert_eq!(reference.file_count, 1);
        assert_eq!(reference.size_bytes, 7651, "the recorded size of multica-autopilots");
        assert_eq!(skill.inline().id.as_deref(), Some(""));
        assert!(find_builtin("builtin:nope").is_none());
    }
}
