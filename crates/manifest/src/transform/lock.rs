//! Environment, application, team and group locks.

use super::Ctx;
use crate::error::Result;
use crate::layout;
use crate::request::{CreateLock, DeleteLock, LockChanged};
use crate::stage::Stage;
use crate::state;

pub(super) fn create(stage: &mut Stage<'_>, ctx: &Ctx<'_>, r: &CreateLock) -> Result<LockChanged> {
    let dirs = state::lock_dirs(stage, &r.target)?;
    let mut changed = false;
    for (_, locks_dir) in &dirs {
        let dir = layout::lock_dir(locks_dir, &r.lock_id);
        let same = state::lock(stage, locks_dir, &r.lock_id)?.is_some_and(|l| l.message == r.message);
        if same {
            continue;
        }
        for (file, value) in [
            (layout::LOCK_MESSAGE, r.message.as_str()),
            (layout::LOCK_CREATED_BY_NAME, ctx.author.name.as_str()),
            (layout::LOCK_CREATED_BY_EMAIL, ctx.author.email.as_str()),
            (layout::LOCK_CREATED_AT, ctx.at),
        ] {
            stage.write(&layout::lock_file(&dir, file), value.as_bytes())?;
        }
        changed = true;
    }
    Ok(LockChanged { lock_id: r.lock_id.clone(), environments: dirs.into_iter().map(|(e, _)| e).collect(), changed })
}

pub(super) fn delete(stage: &mut Stage<'_>, r: &DeleteLock) -> Result<LockChanged> {
    let dirs = state::lock_dirs(stage, &r.target)?;
    let mut changed = false;
    for (_, locks_dir) in &dirs {
        changed |= stage.remove_dir(&layout::lock_dir(locks_dir, &r.lock_id))?;
    }
    Ok(LockChanged { lock_id: r.lock_id.clone(), environments: dirs.into_iter().map(|(e, _)| e).collect(), changed })
}

#[cfg(test)]
mod tests {
    use crate::request::{CreateLock, DeleteLock, LockTarget, Outcome, Request};
    use crate::transform::test_support::*;
    use crate::{Error, GroupName, Stage};

    fn lock(target: LockTarget, msg: &str) -> Request {
        Request::CreateLock(CreateLock { target, lock_id: lock_id("l1"), message: msg.into() })
    }

    #[test]
    fn env_lock_is_written_idempotent_and_removed() {
        let (_d, repo) = repo();
        let mut s = Stage::new(&repo, None);
        create_env(&mut s, "dev", latest(), None);
        let t = LockTarget::Environment { environment: env("dev") };
        let Outcome::Lock(first) = run(&mut s, lock(t.clone(), "why")).unwrap() else { panic!() };
        assert!(first.changed);
        assert_eq!(text(&s, "environments/dev/locks/l1/message").as_deref(), Some("why"));
        assert_eq!(text(&s, "environments/dev/locks/l1/created_by_email").as_deref(), Some("t@example.com"));
        let Outcome::Lock(again) = run(&mut s, lock(t.clone(), "why")).unwrap() else { panic!() };
        assert!(!again.changed);
        let Outcome::Lock(gone) =
            run(&mut s, Request::DeleteLock(DeleteLock { target: t.clone(), lock_id: lock_id("l1") })).unwrap()
        else {
            panic!()
        };
        assert!(gone.changed);
        assert!(s.list("environments/dev/locks").unwrap().is_empty());
        let Outcome::Lock(noop) =
            run(&mut s, Request::DeleteLock(DeleteLock { target: t, lock_id: lock_id("l1") })).unwrap()
        else {
            panic!()
        };
        assert!(!noop.changed);
    }

    #[test]
    fn group_lock_locks_every_env_of_the_group() {
        let (_d, repo) = repo();
        let mut s = Stage::new(&repo, None);
        create_env(&mut s, "de", latest(), Some("prod"));
        create_env(&mut s, "us", latest(), Some("prod"));
        create_env(&mut s, "dev", latest(), None);
        let Outcome::Lock(out) =
            run(&mut s, lock(LockTarget::EnvironmentGroup { group: GroupName::parse("prod").unwrap() }, "m")).unwrap()
        else {
            panic!()
        };
        assert_eq!(out.environments, vec![env("de"), env("us")]);
        assert!(text(&s, "environments/de/locks/l1/message").is_some());
        assert!(text(&s, "environments/us/locks/l1/message").is_some());
        assert!(text(&s, "environments/dev/locks/l1/message").is_none());
        let unknown = run(&mut s, lock(LockTarget::EnvironmentGroup { group: GroupName::parse("nope").unwrap() }, "m"));
        assert!(matches!(unknown, Err(Error::NotFound { .. })));
    }

    #[test]
    fn app_lock_needs_a_known_app() {
        let (_d, repo) = repo();
        let mut s = Stage::new(&repo, None);
        create_env(&mut s, "dev", latest(), None);
        let r = run(&mut s, lock(LockTarget::Application { environment: env("dev"), application: app("ghost") }, "m"));
        assert!(matches!(r, Err(Error::NotFound { what: "application", .. })));
    }
}
