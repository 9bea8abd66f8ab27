// Validates rendered Kubernetes manifests (a multi-document YAML stream on stdin) against the
// API's schemas, offline: kubernetes-models carries validators generated from the Kubernetes
// OpenAPI document (types, formats, enums, required fields) and @kubernetes-models/
// prometheus-operator those of the monitoring.coreos.com CRDs; strict.mjs adds unknown fields.
// An object of a kind neither knows is an error, not a skip. Prints the documents as one JSON array on stdout (for the
// explicit rules of tests/tests/kubernetes.rs); errors go to stderr and exit with status 1.
import { parseAllDocuments } from "yaml";
import { readFileSync } from "node:fs";
import { checkObject, kindFile } from "./strict.mjs";

const input = readFileSync(0, "utf8");
const docs = [];
const errors = [];
for (const doc of parseAllDocuments(input)) {
  if (doc.errors.length) {
    errors.push(`YAML: ${doc.errors.map((e) => e.message).join("; ")}`);
    continue;
  }
  const obj = doc.toJSON();
  if (obj !== null && obj !== undefined) docs.push(obj);
}

function modulePath(apiVersion) {
  if (apiVersion.startsWith("monitoring.coreos.com/")) {
    return `@kubernetes-models/prometheus-operator/${apiVersion}`;
  }
  return `kubernetes-models/${apiVersion}`;
}

for (const obj of docs) {
  const where = `${obj?.kind ?? "?"} ${obj?.metadata?.name ?? "?"}`;
  if (typeof obj?.apiVersion !== "string" || typeof obj?.kind !== "string") {
    errors.push(`${where}: no apiVersion or kind`);
    continue;
  }
  let models;
  try {
    models = await import(modulePath(obj.apiVersion));
  } catch {
    errors.push(`${where}: unknown apiVersion ${obj.apiVersion}`);
    continue;
  }
  const Model = models[obj.kind];
  if (typeof Model !== "function") {
    errors.push(`${where}: unknown kind ${obj.kind} in ${obj.apiVersion}`);
    continue;
  }
  // kustomize wraps a Secret's base64 at 76 columns; the API server's decoder (Go's
  // encoding/base64) skips line ends, the schema's "byte" format does not.
  if (obj.kind === "Secret" && obj.data) {
    for (const k of Object.keys(obj.data)) obj.data[k] = String(obj.data[k]).replace(/[\r\n]/g, "");
  }
  try {
    new Model(obj).validate();
  } catch (e) {
    errors.push(`${where}: ${e.message}`);
  }
  const unknown = [];
  checkObject(obj, kindFile(obj.apiVersion, obj.kind), "", unknown);
  for (const u of unknown) errors.push(`${where}: ${u}`);
}

if (errors.length) {
  for (const e of errors) console.error(`invalid: ${e}`);
  process.exit(1);
}
console.error(`valid: ${docs.length} objects`);
process.stdout.write(JSON.stringify(docs));
