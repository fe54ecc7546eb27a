//! The Claude Code plugin's eight skills (`skills/<name>/SKILL.md`),
//! served through the MCP Skills extension (SEP-2640,
//! `io.modelcontextprotocol/skills`) to every client that speaks it:
//! `skills/list` and `skills/get` give each skill's front matter and the
//! manifest of its files (URI, SHA-256 digest, size); `resources/read` of
//! `skill://<name>/SKILL.md` gives the file.
//!
//! Why here and not rmcp's `skills-fs`: the binary is installed alone, so
//! the files are compiled in (the same texts the prompts of the same names
//! are rendered from, [`crate::tools::prompts::SKILLS`]), and `skills-fs`
//! reads a folder at run time and brings a second YAML crate. The front
//! matter is the few `key: value` lines our skills use (the packaging test
//! holds them to `name`, `description` and `argument-hint`).

use std::sync::LazyLock;

use rmcp::model::{Resource, Skill, SkillFrontmatter, SkillResource, SkillResources};

use crate::tools::prompts::SKILLS;

/// The URI scheme of skill files.
pub const SCHEME: &str = "skill://";

/// A skill file's media type.
pub const MIME_TYPE: &str = "text/markdown";

/// One compiled-in skill.
struct Entry {
    skill: Skill,
    listing: Resource,
    text: &'static str,
}

static ENTRIES: LazyLock<Vec<Entry>> = LazyLock::new(|| {
    SKILLS
        .iter()
        .filter_map(|(name, md, _)| {
            let frontmatter = frontmatter(md)?;
            let uri = format!("{SCHEME}{name}/SKILL.md");
            let files = vec![SkillResource::from_bytes(&uri, md.as_bytes())];
            let listing = Resource::new(&uri, &frontmatter.name)
                .with_description(&frontmatter.description)
                .with_mime_type(MIME_TYPE)
                .with_size(md.len() as u64);
            Some(Entry {
                skill: Skill::new(uri, frontmatter, SkillResources::Files(files)),
                listing,
                text: md,
            })
        })
        .collect()
});

/// The front matter of a `SKILL.md`: `name`, `description` and the other
/// `key: value` lines (a quoted value unquoted). `None` without `name` or
/// `description` (the packaging test rules that out for our skills).
fn frontmatter(md: &str) -> Option<SkillFrontmatter> {
    let (front, _) = md.strip_prefix("---\n")?.split_once("\n---\n")?;
    let mut name = None;
    let mut description = None;
    let mut extra = Vec::new();
    for line in front.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        match key.trim() {
            "name" => name = Some(value),
            "description" => description = Some(value),
            other => extra.push((other.to_owned(), value.to_owned())),
        }
    }
    let mut fm = SkillFrontmatter::new(name?, description?);
    for (k, v) in extra {
        fm = fm.with_field(k, v);
    }
    Some(fm)
}

/// Every skill, as `skills/list` gives them.
pub fn list() -> Vec<Skill> {
    ENTRIES.iter().map(|e| e.skill.clone()).collect()
}

/// The skill whose `SKILL.md` is at `uri`.
pub fn get(uri: &str) -> Option<Skill> {
    ENTRIES.iter().find(|e| e.skill.uri == uri).map(|e| e.skill.clone())
}

/// Each skill's `SKILL.md` as a resource, for `resources/list`.
pub fn listings() -> Vec<Resource> {
    ENTRIES.iter().map(|e| e.listing.clone()).collect()
}

/// The text of the skill file at `uri`.
pub fn read(uri: &str) -> Option<&'static str> {
    ENTRIES.iter().find(|e| e.skill.uri == uri).map(|e| e.text)
}

#[cfg(test)]
mod tests {
    use super::{get, list, read};

    #[test]
    fn every_skill_is_served_and_valid() {
        let skills = list();
        assert_eq!(skills.len(), 8);
        rmcp::model::validate_skills(&skills).unwrap();
        for s in &skills {
            let text = read(&s.uri).unwrap();
            let rmcp::model::SkillResources::Files(files) = &s.resources else {
                panic!("a manifest")
            };
            files[0].verify(text.as_bytes()).unwrap();
            assert_eq!(get(&s.uri).unwrap(), *s);
        }
        let gen_skill = get("skill://gen/SKILL.md").unwrap();
        assert_eq!(gen_skill.frontmatter.name, "gen");
        assert_eq!(
            gen_skill.frontmatter.extra["argument-hint"],
            "<prompt> [model=<checkpoint>] [size=<W>x<H>]"
        );
        assert!(read("skill://gen/../status/SKILL.md").is_none());
    }
}
