#!/usr/bin/env python3
"""Lints and renders charts/railyard with Helm's own engine (PyPI helm-python-sdk: no helm binary needed), with
default and non-default values, validates every rendered object against the Kubernetes schemas
(kubernetes-validate, offline) and checks what the chart promises. Exits non-zero on any problem.

Usage: scripts/helm-check.py   (run by `make helm-check`, which .ci/run calls)
"""
import json
import os
import subprocess
import sys
import tempfile

import helm_python
import kubernetes_validate
import yaml

CHART = "charts/railyard"
K8S = "1.30.0"
failures = []
argocd_objects = []


def check(ok, what):
    if not ok:
        failures.append(what)


def render(values):
    out = helm_python.Chart.load(CHART).render(values=values, name="rel", namespace="apps")
    docs = []
    for path, text in sorted(out.items()):
        if not path.endswith(".yaml"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                docs.append(doc)
    for d in docs:
        if d.get("apiVersion", "").startswith("argoproj.io/"):
            argocd_objects.append(d)  # a CRD kind: checked against Argo CD's schemas below
            continue
        try:
            kubernetes_validate.validate(d, K8S, strict=True)
        except Exception as e:  # noqa: BLE001 - report every schema error
            failures.append(f"{d.get('kind')}/{d['metadata']['name']}: {e}")
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def env_of(container):
    return {e["name"]: e.get("value") for e in container.get("env", [])}


lint = helm_python.lint(CHART)
check(not lint.get("errors"), f"helm lint errors: {lint.get('errors')}")
print("helm lint:", lint)

# defaults: external exporter, PVC, generated admin token
objs = render({})
dep = objs[("Deployment", "rel-railyard")]
spec = dep["spec"]["template"]["spec"]
names = [c["name"] for c in spec["containers"]]
check(names == ["api", "export"], f"containers {names}")
api, export = spec["containers"]
check(dep["spec"]["replicas"] == 1 and dep["spec"]["strategy"]["type"] == "Recreate", "one writer, Recreate")
check(api["readinessProbe"]["httpGet"]["path"] == "/readyz" and api["livenessProbe"]["httpGet"]["path"] == "/healthz", "api probes")
check(export["readinessProbe"]["httpGet"]["path"] == "/readyz", "export probes")
check(spec["securityContext"]["runAsNonRoot"] is True, "non-root")
for c in (api, export):
    check(c["securityContext"]["readOnlyRootFilesystem"] is True, f"{c['name']}: read-only root fs")
    check(c["resources"]["limits"]["memory"], f"{c['name']}: memory limit")
    check({"name": "data", "mountPath": "/data"} in c["volumeMounts"], f"{c['name']}: shares the repo volume")
e = env_of(api)
check(e["RAILYARD_EXPORT"] == "external", "export mode")
check("RAILYARD_EXTERNAL_URL" not in e and e["RAILYARD_MAX_CONNECTIONS"] == "1024", "default connection limits")
check(e["RAILYARD_GIT_URL"] == "https://git.example.com/platform/manifests.git", "git.url")
check(e["RAILYARD_BRANCH"] == "main", "git.branch")
check(e["RAILYARD_MINIMIZE_EXPORTED_DATA"] == "false", "git.minimizeExportedData")
check(e["RAILYARD_RELEASE_VERSIONS_LIMIT"] == "20", "git.releaseVersionsLimit")
check(e["RAILYARD_FAIL_ON_ERROR_WITH_GIT_PUSH_TAGS"] == "true", "manifestRepoExport.failOnErrorWithGitPushTags")
check(e["RAILYARD_AUTH_TOKENS"] == "/secrets/auth/tokens.yaml", "auth on by default")
check("RAILYARD_WEBHOOKS" not in e, "no webhooks by default")
check(env_of(export)["RAILYARD_REPO_DIR"] == "/data/repo.git", "export repo dir")
secret = objs[("Secret", "rel-railyard")]
check("admin-token" in secret["stringData"] and "token_sha256" in secret["stringData"]["tokens.yaml"], "generated admin token")
check(("PersistentVolumeClaim", "rel-railyard") in objs, "PVC")
check(("Ingress", "rel-railyard") not in objs, "no ingress by default")
check(not any(k == "Application" for k, _ in objs), "no root Application by default")
check("RAILYARD_ARGOCD_REPO_URL" not in e, "Argo CD reads git.url by default")

# non-default: embedded export, given tokens and git credentials, ingress, no persistence, flags changed
objs = render({
    "git": {"url": "ssh://git@git.example.com/m.git", "branch": "prod", "minimizeExportedData": True, "releaseVersionsLimit": 0,
            "credentials": "https://bot:tok@git.example.com", "sshKey": "KEY", "sshKnownHosts": "git.example.com ssh-ed25519 AAAA",
            "username": "bot", "password": "s3cret"},
    "manifestRepoExport": {"mode": "embedded", "failOnErrorWithGitPushTags": False},
    "auth": {"tokens": "- token_sha256: " + "a" * 64 + "\n  name: ci\n  email: ci@x\n  roles: [{action: admin}]\n"},
    "api": {"batchMax": 10, "buildWebhook": "https://ci.example.com/build", "externalUrl": "https://ry.example.com",
            "headerReadTimeoutSeconds": 5, "idleTimeoutSeconds": 30, "maxConnections": 200},
    "ingress": {"enabled": True, "className": "nginx", "hosts": [{"host": "ry.example.com", "paths": ["/"]}]},
    "persistence": {"enabled": False},
    "webhooks": {"subscribers": [{"url": "https://hooks.example.com/r", "secret": "0123456789abcdef", "events": ["*"]}]},
    "argocd": {"repoUrl": "https://git.example.com/m.git", "rootApplication": {"enabled": True}},
})
dep = objs[("Deployment", "rel-railyard")]
spec = dep["spec"]["template"]["spec"]
check([c["name"] for c in spec["containers"]] == ["api"], "embedded: one container")
e = env_of(spec["containers"][0])
check(e["RAILYARD_EXPORT"] == "embedded", "embedded")
check(e["RAILYARD_BRANCH"] == "prod" and e["RAILYARD_MINIMIZE_EXPORTED_DATA"] == "true", "git values")
check(e["RAILYARD_RELEASE_VERSIONS_LIMIT"] == "0", "git.releaseVersionsLimit=0")
check(e["RAILYARD_FAIL_ON_ERROR_WITH_GIT_PUSH_TAGS"] == "false", "failOnErrorWithGitPushTags=false")
check(e["RAILYARD_BATCH_MAX"] == "10" and e["RAILYARD_BUILD_WEBHOOK"] == "https://ci.example.com/build", "api values")
check(e["RAILYARD_EXTERNAL_URL"] == "https://ry.example.com", "api.externalUrl")
check(e["RAILYARD_HEADER_READ_TIMEOUT_SECONDS"] == "5" and e["RAILYARD_IDLE_TIMEOUT_SECONDS"] == "30"
      and e["RAILYARD_MAX_CONNECTIONS"] == "200", "connection limits")
check(e["RAILYARD_GIT_CREDENTIALS"] == "/secrets/git/git-credentials" and e["RAILYARD_GIT_SSH_KEY"] == "/secrets/git/ssh-key", "git secrets")
check(e["RAILYARD_GIT_SSH_KNOWN_HOSTS"] == "/secrets/git/known-hosts", "known hosts")
check(e["RAILYARD_GIT_USERNAME"] == "bot", "git.username")
password = [x for x in spec["containers"][0]["env"] if x["name"] == "RAILYARD_GIT_PASSWORD"][0]
check(password["valueFrom"]["secretKeyRef"]["key"] == "git-password", "git.password from the Secret, not the pod spec")
check(objs[("Secret", "rel-railyard")]["stringData"]["git-password"] == "s3cret", "password in the Secret")
check("admin-token" not in objs[("Secret", "rel-railyard")]["stringData"], "no generated token when tokens are given")
check(("Ingress", "rel-railyard") in objs, "ingress")
check(e["RAILYARD_WEBHOOKS"] == "/secrets/webhooks/webhooks.yaml", "webhooks file from the Secret")
check("0123456789abcdef" in objs[("Secret", "rel-railyard")]["stringData"]["webhooks.yaml"], "webhooks in the Secret")
check("0123456789abcdef" not in str(dep), "the webhook secret is not in the pod spec")
check(("PersistentVolumeClaim", "rel-railyard") not in objs, "no PVC")
check({"name": "data", "emptyDir": {}} in spec["volumes"], "emptyDir without persistence")
check(e["RAILYARD_ARGOCD_REPO_URL"] == "https://git.example.com/m.git", "argocd.repoUrl")
root = objs.get(("Application", "rel-railyard-environments"))
check(root is not None, "argocd.rootApplication.enabled renders the root Application")
if root:
    check(root["metadata"]["namespace"] == "argocd" and root["spec"]["project"] == "default", "root: namespace, project")
    check(root["spec"]["source"] == {"repoURL": "https://git.example.com/m.git", "targetRevision": "prod",
                                     "path": "argocd/v1alpha1", "directory": {"recurse": True}}, f"root source {root['spec']['source']}")
    check(root["spec"]["destination"] == {"server": "https://kubernetes.default.svc", "namespace": "argocd"}, "root destination")
    check(root["spec"]["syncPolicy"] == {"automated": {"prune": True, "selfHeal": True}}, "root syncPolicy")
    check("finalizers" not in root["metadata"], "root: no cascading finalizer")

# the root Application with git.url as its source and no automated sync
objs = render({"argocd": {"rootApplication": {"enabled": True, "name": "envs", "automated": False}}})
root = objs.get(("Application", "envs"), {})
check(root.get("spec", {}).get("source", {}).get("repoURL") == "https://git.example.com/platform/manifests.git", "root: git.url")
check("syncPolicy" not in root.get("spec", {}), "root: manual sync")

# Argo CD's own schemas (tests/clients/argocd, installed by `npm ci` there; .ci/run does it before helm-check)
validator = "tests/clients/argocd/validate.mjs"
if os.path.isdir("tests/clients/argocd/node_modules"):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "root.yaml")
        with open(path, "w") as f:
            yaml.safe_dump_all(argocd_objects, f)
        run = subprocess.run(["node", validator, path], capture_output=True, text=True)
        out = json.loads(run.stdout or "{}")
        check(run.returncode == 0 and len(out.get("objects", [])) == len(argocd_objects),
              f"Argo CD schema check: {run.stdout} {run.stderr}")
else:
    failures.append("tests/clients/argocd is not installed: run `npm ci` there (the Argo CD schema check)")

# insecure: no tokens at all
objs = render({"auth": {"insecureNoAuth": True}})
e = env_of(objs[("Deployment", "rel-railyard")]["spec"]["template"]["spec"]["containers"][0])
check("RAILYARD_AUTH_TOKENS" not in e and e["RAILYARD_INSECURE_NO_AUTH"] == "true", "insecureNoAuth")

# OIDC: the issuer, the audiences and the policy (in a ConfigMap, mounted as --rbac-policy)
policy = "p, role:developer, CreateLock, pre:*, *, allow\ng, devs, role:developer\n"
objs = render({"auth": {"oidc": {"issuer": "https://dex.example.com", "audience": ["railyard", "cli"]}, "rbacPolicy": policy}})
spec = objs[("Deployment", "rel-railyard")]["spec"]["template"]["spec"]
e = env_of(spec["containers"][0])
check(e["RAILYARD_OIDC_ISSUER"] == "https://dex.example.com" and e["RAILYARD_OIDC_AUDIENCE"] == "railyard,cli", "oidc values")
check(e["RAILYARD_RBAC_POLICY"] == "/config/rbac/policy.csv", "rbac policy path")
check("RAILYARD_OIDC_CLIENT_ID" not in e, "no UI client id unless asked")
objs_ui = render({"auth": {"oidc": {"issuer": "https://dex.example.com", "audience": ["cli"], "clientId": "railyard-ui"}, "rbacPolicy": policy}})
e_ui = env_of(objs_ui[("Deployment", "rel-railyard")]["spec"]["template"]["spec"]["containers"][0])
check(e_ui.get("RAILYARD_OIDC_CLIENT_ID") == "railyard-ui", "the UI's OIDC client id")
check(objs[("ConfigMap", "rel-railyard-rbac")]["data"]["policy.csv"].strip() == policy.strip(), "policy in the ConfigMap")
check(any(v.get("configMap", {}).get("name") == "rel-railyard-rbac" for v in spec["volumes"]), "policy mounted")
objs = render({"auth": {"oidc": {"issuer": "https://dex.example.com", "audience": ["railyard"]}, "existingRbacPolicyConfigMap": "mine"}})
spec = objs[("Deployment", "rel-railyard")]["spec"]["template"]["spec"]
check(("ConfigMap", "rel-railyard-rbac") not in objs, "no ConfigMap with an existing one")
check(any(v.get("configMap", {}).get("name") == "mine" for v in spec["volumes"]), "the existing ConfigMap mounted")
try:
    render({"auth": {"oidc": {"issuer": "https://dex.example.com", "audience": ["railyard"]}}})
    check(False, "an issuer without a policy must fail to render")
except Exception as err:  # Helm's `fail`
    check("rbacPolicy" in str(err), f"the render failure names rbacPolicy: {err}")

# Replicas: more than one needs after-push; then no PVC, no export container, a PodDisruptionBudget, rolling updates.
objs = render({"replicaCount": 3, "api": {"ack": "after-push"}})
dep = objs[("Deployment", "rel-railyard")]
spec = dep["spec"]["template"]["spec"]
check(dep["spec"]["replicas"] == 3 and dep["spec"]["strategy"]["type"] == "RollingUpdate", "three replicas, rolled")
check([c["name"] for c in spec["containers"]] == ["api"], "after push: no export container")
e = env_of(spec["containers"][0])
check(e["RAILYARD_ACK"] == "after-push" and e["RAILYARD_EXPORT"] == "embedded", f"after-push env {e.get('RAILYARD_ACK')}")
check(e["RAILYARD_FETCH_INTERVAL_MS"] == "1000" and e["RAILYARD_PUSH_ATTEMPTS"] == "30", "fetch interval and push attempts")
data = next(v for v in spec["volumes"] if v["name"] == "data")
check("emptyDir" in data and ("PersistentVolumeClaim", "rel-railyard") not in objs, "after push: a clone per pod, no PVC")
check(objs[("PodDisruptionBudget", "rel-railyard")]["spec"]["minAvailable"] == 1, "a PodDisruptionBudget")
check(("PodDisruptionBudget", "rel-railyard") not in render({}), "no PodDisruptionBudget for one pod")
check(env_of(render({})[("Deployment", "rel-railyard")]["spec"]["template"]["spec"]["containers"][0])["RAILYARD_ACK"] == "after-commit", "after-commit by default")
for bad, needle in [({"replicaCount": 2}, "after-push"), ({"api": {"ack": "sometimes"}}, "api.ack")]:
    try:
        render(bad)
        check(False, f"{bad} must fail to render")
    except Exception as err:  # Helm's `fail`
        check(needle in str(err), f"the render failure names {needle}: {err}")

if failures:
    print("helm-check FAILED:")
    for f in failures:
        print("  -", f)
    sys.exit(1)
print("helm-check: lint clean; default, non-default and insecure renders valid and as promised; root Application valid for Argo CD")
