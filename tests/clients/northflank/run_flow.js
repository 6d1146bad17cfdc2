// @northflank/js-client (from npm) against Railyard's Northflank-compatible release-flow API.
// Usage: node run_flow.js URL. Stores a flow, runs it with arguments and overrides, reads the runs back, does the
// same through the team-scoped paths, and tries to abort a finished run and an unknown one; asserts
// what Northflank's client sees, prints a JSON summary, exits non-zero on any difference.
const assert = require('node:assert/strict');
const { ApiClient, ApiClientInMemoryContextProvider } = require('@northflank/js-client');

async function main() {
  const url = process.argv[2];
  const contexts = new ApiClientInMemoryContextProvider();
  await contexts.addContext({ name: 'railyard', token: 'test-token', host: url });
  const api = new ApiClient(contexts, { throwErrorOnHttpErrorCode: false });
  const parameters = { projectId: 'railyard', pipelineId: 'main', stage: 'Production' };

  const template = {
    steps: [
      { ref: 'freeze', kind: 'lock', environment: '${args.TARGET:-prod}', lockId: 'nf-flow', message: 'release ${args.RELEASE}' },
      { ref: 'train', kind: 'release-train', environment: '${args.TARGET:-prod}', team: '${args.TEAM}' },
      { ref: 'mark', kind: 'tag', tag: 'nf-${args.RELEASE}' },
      { ref: 'thaw', kind: 'unlock', environment: '${args.TARGET:-prod}', lockId: 'nf-flow' },
    ],
  };
  const put = await api.update.releaseFlow({ parameters, data: template });
  assert.equal(put.error, undefined, JSON.stringify(put.error));
  const got = await api.get.releaseFlow({ parameters });
  assert.equal(got.data.flow, 'main/production');
  assert.equal(got.data.steps.length, 4);

  const run = await api.run.releaseFlow({
    parameters,
    data: {
      name: 'Example Run',
      description: 'This is a description for the release-flow run.',
      arguments: { RELEASE: '42', TEAM: 'pay' },
      overrides: { train: { environment: 'qa' } },
      releaseNodeOverrides: { web: { version: 2 } },
    },
  });
  assert.equal(run.error, undefined, JSON.stringify(run.error));
  assert.equal(run.data.status, 'succeeded');
  assert.equal(run.data.name, 'Example Run');

  const bad = await api.run.releaseFlow({ parameters, data: { name: 'x' } });
  assert.equal(bad.error.status, 400, JSON.stringify(bad));

  const runs = await api.list.releaseFlowRuns({ parameters });
  assert.equal(runs.data.runs.length, 1);
  const one = await api.get.releaseFlowRun({ parameters: { ...parameters, runId: String(run.data.id) } });
  assert.equal(one.data.id, run.data.id);
  assert.equal(one.data.arguments.RELEASE, '42');

  // the team-scoped paths serve the same flow (any teamId: Railyard has one project)
  const team = { teamId: 'platform', ...parameters };
  const teamGot = await api.get.releaseFlow({ parameters: team });
  assert.equal(teamGot.error, undefined, JSON.stringify(teamGot.error));
  assert.equal(teamGot.data.flow, 'main/production');
  const teamRun = await api.run.releaseFlow({ parameters: team, data: { name: 'Team Run', arguments: { RELEASE: '43', TEAM: 'other' } } });
  assert.equal(teamRun.error, undefined, JSON.stringify(teamRun.error));
  assert.equal(teamRun.data.status, 'succeeded');
  assert.equal(teamRun.data.id, run.data.id + 1);
  const teamRuns = await api.list.releaseFlowRuns({ parameters: team });
  assert.deepEqual(teamRuns.data.runs.map((r) => r.name), ['Example Run', 'Team Run']);
  const teamOne = await api.get.releaseFlowRun({ parameters: { ...team, runId: String(teamRun.data.id) } });
  assert.equal(teamOne.data.name, 'Team Run');
  const updated = await api.update.releaseFlow({ parameters: team, data: template });
  assert.equal(updated.error, undefined, JSON.stringify(updated.error));

  // a run is applied inside the request that starts it: there is nothing left to abort
  for (const p of [parameters, team]) {
    const abort = await api.abort.releaseFlowRun({ parameters: { ...p, runId: String(run.data.id) } });
    assert.equal(abort.error.status, 409, JSON.stringify(abort));
    assert.match(abort.error.message, /already finished/, JSON.stringify(abort));
  }
  const unknown = await api.abort.releaseFlowRun({ parameters: { ...team, runId: '99' } });
  assert.equal(unknown.error.status, 404, JSON.stringify(unknown));

  console.log(JSON.stringify({
    id: run.data.id,
    commit: run.data.commit,
    teamCommit: teamRun.data.commit,
    steps: run.data.steps.map((s) => [s.ref, s.status]),
  }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
