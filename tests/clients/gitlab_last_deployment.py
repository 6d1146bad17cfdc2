"""python-gitlab reads the environments named on the command line and prints each one's `last_deployment`.

Usage: gitlab_last_deployment.py URL ENV... Prints {"<env>": <last_deployment>, ...} as JSON; the Rust test checks it.
"""
import json
import sys

import gitlab

url, names = sys.argv[1], sys.argv[2:]
gl = gitlab.Gitlab(url, private_token="railyard-test-token")
project = gl.projects.get(1)
out = {}
for name in names:
    [listed] = project.environments.list(name=name)
    env = project.environments.get(listed.id)
    assert env.last_deployment == listed.last_deployment, (env.last_deployment, listed.last_deployment)
    out[name] = env.last_deployment
print(json.dumps(out))
