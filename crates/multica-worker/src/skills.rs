//! The agent's skills: resolved while the task prepares, cached by hash
//! across tasks, handed to the agent as [`AgentSkill`]s it can write to a
//! directory.
//!
//! A claim names the agent's skills one of two ways. With the
//! `skill-bundles-v1` capability (server HEAD 1cc46b2697) it carries
//! references (`agent.skill_refs`: ID, source, hash) and the content is
//! fetched with `skill-bundles/resolve` while the task is still dispatched;
//! without it (and on 3c93ebaf1c) every skill's content is inline
//! (`agent.skills`, about 200 KB with HEAD's nine built-ins). Either way the
//! agent gets the same list.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use multica_api::{DaemonApiExt, Endpoint, Skill, SkillBundle, SkillBundleRef, SkillBundleRequest, SkillFile, Task};

use crate::routes::LaterRoute;
use crate::worker::Shared;

/// One skill of the task's agent, with its content.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AgentSkill {
    /// The skill's ID: `builtin:<name>` or a workspace skill's UUID at HEAD
    /// 1cc46b2697 (`""` for an inline built-in); empty on 3c93ebaf1c.
    pub id: String,
    /// Skill name.
    pub name: String,
    /// What it is for; may be empty.
    pub description: String,
    /// The main document, written as `SKILL.md`.
    pub content: String,
    /// Supporting files, paths relative to the skill's folder.
    pub files: Vec<SkillFile>,
    /// `sha256:` + 64 hex digits over the whole skill, when the server
    /// sent one (skill references); empty for inline skills.
    pub hash: String,
}

impl AgentSkill {
    /// The name as a directory name: lower case, runs of anything but
    /// ASCII letters and digits made one `-`, `skill` when nothing is left
    /// (the Go daemon's rule).
    pub fn slug(&self) -> String {
        let mut slug = String::new();
        for c in self.name.trim().chars().flat_map(char::to_lowercase) {
            if c.is_ascii_alphanumeric() {
                slug.push(c);
            } else if !slug.ends_with('-') {
                slug.push('-');
            }
        }
        let slug = slug.trim_matches('-');
        if slug.is_empty() {
            "skill".to_owned()
        } else {
            slug.to_owned()
        }
    }

    /// Writes every skill into `dir`, as agent CLIs discover skills: one
    /// folder per skill named by its [`slug`](AgentSkill::slug) (`-2`,
    /// `-3`… when two names give one slug) with the content as `SKILL.md`
    /// and the supporting files beside it. Creates `dir`; returns the
    /// folders written, in order. A file path that would leave the skill's
    /// folder (absolute, or with `..`) is an [`io::ErrorKind::InvalidData`]
    /// error, as the paths come from the server; a supporting file named
    /// `SKILL.md` is skipped (the content is that file).
    pub fn write_all(skills: &[AgentSkill], dir: &Path) -> io::Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir)?;
        let mut taken = HashSet::new();
        let mut written = Vec::with_capacity(skills.len());
        for skill in skills {
            let base = skill.slug();
            let mut slug = base.clone();
            let mut n = 1;
            while !taken.insert(slug.clone()) {
                n += 1;
                slug = format!("{base}-{n}");
            }
            let folder = dir.join(&slug);
            std::fs::create_dir_all(&folder)?;
            std::fs::write(folder.join("SKILL.md"), &skill.content)?;
            for file in &skill.files {
                let relative = safe_relative_path(&file.path)?;
                if relative == Path::new("SKILL.md") {
                    continue;
                }
                let path = folder.join(relative);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::write(path, &file.content)?;
            }
            written.push(folder);
        }
        Ok(written)
    }
}

/// `path` as a path inside a skill's folder: relative, without `..`.
fn safe_relative_path(path: &str) -> io::Result<PathBuf> {
    let mut relative = PathBuf::new();
    for component in Path::new(path).components() {
        match component {
            Component::Normal(part) => relative.push(part),
            Component::CurDir => {}
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("skill file path {path:?} leaves the skill's folder"),
                ))
            }
        }
    }
    if relative.as_os_str().is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("skill file path {path:?} is empty")));
    }
    Ok(relative)
}

impl From<&Skill> for AgentSkill {
    fn from(skill: &Skill) -> Self {
        Self {
            id: skill.id.clone().unwrap_or_default(),
            name: skill.name.clone(),
            description: skill.description.clone(),
            content: skill.content.clone(),
            files: skill.files.clone(),
            hash: String::new(),
        }
    }
}

impl From<SkillBundle> for AgentSkill {
    fn from(bundle: SkillBundle) -> Self {
        Self {
            id: bundle.id,
            name: bundle.name,
            description: bundle.description,
            content: bundle.content,
            files: bundle.files.into_iter().map(|file| SkillFile::new(file.path, file.content)).collect(),
            hash: bundle.hash,
        }
    }
}

/// Fetched skills by hash, shared by every task of a worker: a skill whose
/// hash a claim names again is not fetched again. Holds at most
/// [`SkillCache::CAPACITY`] skills, the oldest dropped first.
#[derive(Debug, Default)]
pub(crate) struct SkillCache {
    inner: Mutex<CacheInner>,
}

#[derive(Debug, Default)]
struct CacheInner {
    by_hash: HashMap<String, AgentSkill>,
    order: VecDeque<String>,
}

impl SkillCache {
    /// Enough for HEAD's nine built-ins and a workspace's own skills.
    pub(crate) const CAPACITY: usize = 256;

    fn get(&self, hash: &str) -> Option<AgentSkill> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).by_hash.get(hash).cloned()
    }

    fn insert(&self, skill: &AgentSkill) {
        if skill.hash.is_empty() {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if inner.by_hash.insert(skill.hash.clone(), skill.clone()).is_none() {
            inner.order.push_back(skill.hash.clone());
        }
        while inner.order.len() > Self::CAPACITY {
            if let Some(oldest) = inner.order.pop_front() {
                inner.by_hash.remove(&oldest);
            }
        }
    }
}

/// Why the skills could not be had.
#[derive(Debug)]
pub(crate) enum SkillsUnavailable {
    /// The server refused because the task is no longer preparing
    /// (cancelled or handed out again): not the skills' fault.
    NotPreparing,
    /// The bundles could not be had, for this reason (the task fails with
    /// `skill_bundle_unavailable`, which the server retries).
    Failed(String),
}

/// The task's skills: its references resolved (from the cache where it has
/// them, the rest in one call, transient failures repeated) or its inline
/// skills. In the claim's order.
pub(crate) async fn resolve(shared: &Shared, task: &Task) -> Result<Arc<[AgentSkill]>, SkillsUnavailable> {
    let Some(agent) = &task.agent else {
        return Ok(Arc::from(Vec::new()));
    };
    if agent.skill_refs.is_empty() {
        return Ok(agent.skills.iter().map(AgentSkill::from).collect());
    }
    let mut found: Vec<Option<AgentSkill>> =
        agent.skill_refs.iter().map(|skill| shared.skills.get(&skill.hash)).collect();
    let missing: Vec<SkillBundleRef> = agent
        .skill_refs
        .iter()
        .zip(&found)
        .filter(|(_, hit)| hit.is_none())
        .map(|(skill, _)| SkillBundleRef::from(skill))
        .collect();
    if !missing.is_empty() {
        let request = SkillBundleRequest { skills: missing };
        let (runtime_id, task_id) = (&task.record.runtime_id, &task.record.id);
        let answer = shared
            .config
            .call_retry
            .run(Endpoint::ResolveSkillBundles, || shared.api.resolve_skill_bundles(runtime_id, task_id, &request))
            .await;
        let bundles = match shared.routes.answer(LaterRoute::SkillBundles, answer) {
            Some(Ok(bundles)) => bundles,
            // 409 `task is not preparing`; 404 `task not found`.
            Some(Err(error)) if error.status() == Some(409) || error.is_task_not_found() => {
                return Err(SkillsUnavailable::NotPreparing)
            }
            Some(Err(error)) => return Err(SkillsUnavailable::Failed(error.display_chain().to_string())),
            None => return Err(SkillsUnavailable::Failed("the server cannot resolve skill bundles".to_owned())),
        };
        for bundle in bundles {
            let skill = AgentSkill::from(bundle);
            shared.skills.insert(&skill);
            // A workspace skill changed since the claim comes with its new hash.
            let slots = agent.skill_refs.iter().zip(found.iter_mut());
            if let Some((_, slot)) = slots.filter(|(_, slot)| slot.is_none()).find(|(wanted, _)| wanted.id == skill.id)
            {
                *slot = Some(skill);
            }
        }
    }
    let mut skills = Vec::with_capacity(found.len());
    for (wanted, skill) in agent.skill_refs.iter().zip(found) {
        match skill {
            Some(skill) => skills.push(skill),
            None => {
                let why = format!("the server sent no bundle for skill {} ({})", wanted.name, wanted.id);
                return Err(SkillsUnavailable::Failed(why));
            }
        }
    }
    Ok(skills.into())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn skill(name: &str, files: Vec<SkillFile>) -> AgentSkill {
        AgentSkill { name: name.into(), content: format!("# {name}"), files, ..AgentSkill::default() }
    }

    #[test]
    fn skills_are_written_one_folder_each_with_distinct_slugs() {
        let dir = std::env::temp_dir().join(format!("multica-skills-{}", std::process::id()));
        let skills = [
            skill("Code Review", vec![SkillFile::new("refs/a.md", "a"), SkillFile::new("SKILL.md", "dup")]),
            skill("code-review", Vec::new()),
            skill("***", Vec::new()),
        ];
        let written = AgentSkill::write_all(&skills, &dir).unwrap();
        let names: Vec<_> =
            written.iter().map(|path| path.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["code-review", "code-review-2", "skill"]);
        assert_eq!(std::fs::read_to_string(dir.join("code-review/SKILL.md")).unwrap(), "# Code Review");
        assert_eq!(std::fs::read_to_string(dir.join("code-review/refs/a.md")).unwrap(), "a");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_path_that_leaves_the_skill_folder_is_refused() {
        let dir = std::env::temp_dir().join(format!("multica-skills-escape-{}", std::process::id()));
        for path in ["../evil", "/etc/evil", "a/../../evil", ""] {
            let error = AgentSkill::write_all(&[skill("x", vec![SkillFile::new(path, "x")])], &dir).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidData, "{path}");
        }
        assert!(!dir.parent().unwrap().join("evil").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
