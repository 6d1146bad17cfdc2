// Validates every object of the Argo CD YAML streams named on the command line against Argo CD's own CRD schemas
// (@kubernetes-models/argo-cd, offline). Prints {"objects":[{"file","kind","name"}],"errors":[...]} and exits 1 if
// any object is invalid or of another kind.
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { Application, AppProject } from '@kubernetes-models/argo-cd/argoproj.io/v1alpha1';

const kinds = { Application, AppProject };
const objects = [];
const errors = [];
for (const file of process.argv.slice(2)) {
  for (const doc of parseAllDocuments(readFileSync(file, 'utf8'))) {
    if (doc.errors.length) {
      errors.push(`${file}: YAML: ${doc.errors.map((e) => e.message).join('; ')}`);
      continue;
    }
    const obj = doc.toJS();
    if (obj === null) continue;
    const name = obj?.metadata?.name;
    const Model = kinds[obj?.kind];
    if (obj?.apiVersion !== 'argoproj.io/v1alpha1' || !Model) {
      errors.push(`${file}: ${obj?.apiVersion} ${obj?.kind} ${name} is not an Argo CD Application or AppProject`);
      continue;
    }
    try {
      new Model(obj).validate();
      objects.push({ file, kind: obj.kind, name });
    } catch (e) {
      errors.push(`${file}: ${obj.kind} ${name}: ${e.message}`);
    }
  }
}
console.log(JSON.stringify({ objects, errors }));
process.exitCode = errors.length ? 1 : 0; // not process.exit(): it would cut a piped stdout short
