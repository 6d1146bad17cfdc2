//! The one rule for tags a write requests (`gitTag` of a train, `tag` steps of a flow): a name that is taken, or
//! that is a folder of a known tag or lies inside one, is refused with 409 before anything is written. The writer
//! applies it on its own state (with the tags its batch already claimed); handlers apply it early to a snapshot.

use git2::Repository;
use railyard_manifest::{Error, TagName};
use railyard_refs::TagConflict;

use crate::error::{ApiError, ApiResult};

/// Refuses `tags` if one conflicts with a tag the repo knows, with one in `claimed` (taken by earlier requests of
/// the same batch), or with another of `tags`.
pub fn check(repo: &Repository, tags: &[&TagName], claimed: &[String]) -> ApiResult<()> {
    for (i, tag) in tags.iter().enumerate() {
        let tag = tag.as_str();
        let earlier = claimed.iter().map(String::as_str).chain(tags[..i].iter().map(|t| t.as_str()));
        let conflict = match earlier.into_iter().find(|other| railyard_refs::tags_conflict(tag, other)) {
            Some(other) if other == tag => Some(TagConflict::Exists),
            Some(other) => Some(TagConflict::Nested(other.to_owned())),
            None => railyard_refs::tag_conflict(repo, tag)?,
        };
        match conflict {
            None => {}
            Some(TagConflict::Exists) => {
                return Err(Error::conflict("tag_exists", format!("tag {tag} already exists")).into());
            }
            Some(TagConflict::Nested(other)) => {
                return Err(ApiError::from(Error::conflict(
                    "tag_conflict",
                    format!("tag {tag} cannot exist beside tag {other}: one would be a folder of the other"),
                ))
                .with("conflicting_tag", serde_json::json!(other)));
            }
        }
    }
    Ok(())
}
