"""python-gitlab against Railyard's GitLab-compatible API: environments end to end.

Usage: gitlab_envs.py URL. Exits non-zero (with the failing assertion) if anything differs from GitLab's behaviour;
prints a JSON summary the Rust test checks too.
"""
import datetime
import json
import sys

import gitlab

url = sys.argv[1]
gl = gitlab.Gitlab(url, private_token="railyard-test-token")

project = gl.projects.get(1)
assert project.name == "railyard", project.name
assert gl.projects.get("railyard").id == 1
try:
    gl.projects.get(2)
    raise AssertionError("project 2 exists")
except gitlab.exceptions.GitlabGetError as e:
    assert e.response_code == 404, e.response_code

created = []
for i in range(23):
    env = project.environments.create({"name": f"review/app-{i:02d}", "external_url": f"https://app-{i}.example.com"})
    created.append(env.id)
dev = project.environments.create({"name": "dev", "tier": "development"})
assert dev.state == "available" and dev.tier == "development", dev.attributes
assert dev.slug == "dev"

# get_all follows the Link header across pages (24 environments, 20 per page by default)
everything = project.environments.list(get_all=True)
assert len(everything) == 24, len(everything)
assert len({e.id for e in everything}) == 24
first = project.environments.list(page=1, per_page=10)
assert len(first) == 10
last = project.environments.list(page=3, per_page=10)
assert len(last) == 4, len(last)
assert [e.name for e in project.environments.list(search="app-1", get_all=True)] == [f"review/app-{i}" for i in range(10, 20)]
assert [e.name for e in project.environments.list(name="dev")] == ["dev"]

got = project.environments.get(dev.id)
assert got.name == "dev"
got.external_url = "https://dev.example.com"
got.save()
assert project.environments.get(dev.id).external_url == "https://dev.example.com"

try:
    project.environments.delete(dev.id)
    raise AssertionError("deleted an environment that is not stopped")
except gitlab.exceptions.GitlabDeleteError as e:
    assert e.response_code == 409, e.response_code
got.stop()
assert project.environments.get(dev.id).state == "stopped"
project.environments.delete(dev.id)
try:
    project.environments.get(dev.id)
    raise AssertionError("deleted environment still there")
except gitlab.exceptions.GitlabGetError as e:
    assert e.response_code == 404
    assert "404 Environment Not Found" in str(e.error_message), e.error_message

# stop review apps 0..4, then the clean-up: a dry run deletes nothing, then a real one
for e in project.environments.list(search="app-0", get_all=True)[:5]:
    e.stop()
week_ago = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=8)).strftime("%Y-%m-%dT%H:%M:%SZ")
answer = gl.http_post("/projects/1/environments/stop_stale", query_data={"before": week_ago})
assert "stale" in answer["message"], answer
tomorrow = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
dry = gl.http_delete("/projects/1/environments/review_apps", query_data={"before": tomorrow}).json()
assert len(dry["scheduled_entries"]) == 5, dry
assert len(project.environments.list(get_all=True)) == 23
real = gl.http_delete("/projects/1/environments/review_apps", query_data={"before": tomorrow, "dry_run": "false"}).json()
assert len(real["scheduled_entries"]) == 5
left = project.environments.list(get_all=True)
assert len(left) == 18, len(left)

# what Railyard does not serve answers in GitLab's shape, so python-gitlab reports GitLab's messages
for call, path, code, message in [
    (gl.http_get, "/projects/1/merge_requests", 404, "404 Not Found"),
    (gl.http_get, "/version", 404, "404 Not Found"),
    (gl.http_delete, "/projects/1", 405, "405 Method Not Allowed"),
]:
    try:
        call(path)
        raise AssertionError(f"{path} answered")
    except gitlab.exceptions.GitlabHttpError as e:
        assert (e.response_code, e.error_message) == (code, message), (path, e.response_code, e.error_message)

print(json.dumps({"created": len(created) + 1, "listed": len(everything), "left": sorted(e.name for e in left)}))
