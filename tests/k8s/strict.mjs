// Unknown fields, which the schemas of kubernetes-models accept (their validators do not set
// additionalProperties: false) and the API server drops or refuses (kubectl --validate=strict):
// each model's TypeScript declaration (.d.ts) lists its interface's fields and their types, so
// the object is walked along those interfaces and any field they do not declare is an error.
import { readFileSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const nodeModules = join(dirname(fileURLToPath(import.meta.url)), "node_modules");
const cache = new Map();

// The interface a .d.ts declares: { fields: Map(name -> type text), imports: Map(name -> file) }.
function load(file) {
  if (cache.has(file)) return cache.get(file);
  const text = readFileSync(file, "utf8");
  const imports = new Map();
  for (const m of text.matchAll(/^import \{ ([^}]+) \} from "([^"]+)";$/gm)) {
    const spec = m[2];
    const target = spec.startsWith(".")
      ? join(dirname(file), spec.replace(/\.js$/, ".d.ts"))
      : join(nodeModules, `${spec}.d.ts`);
    for (const name of m[1].split(",")) imports.set(name.trim(), target);
  }
  // The class declaration lists every field, inherited ones included (the interface may
  // extend others); a file without one declares a type alias (a leaf).
  const body = text.match(/^export declare class \w+ extends [^{]*\{\n([\s\S]*?)^\}$/m);
  let shape = null;
  if (body) {
    const fields = new Map();
    const field = /^ {4}"([^"]+)"\??: (\{\n[\s\S]*?^ {4}\}|[^\n]+);$/gm;
    for (const f of body[1].matchAll(field)) fields.set(f[1], f[2].replace(/\s+/g, " "));
    shape = { fields, imports };
  }
  cache.set(file, shape);
  return shape;
}

// Checks `value` against a field's type text, as seen from the file `shape` came from.
function checkType(value, type, shape, path, errors) {
  if (value === null || value === undefined) return;
  const array = type.match(/^Array<(.+)>$/);
  if (array) {
    if (Array.isArray(value)) value.forEach((v, i) => checkType(v, array[1], shape, `${path}[${i}]`, errors));
    return;
  }
  const map = type.match(/^\{\s*\[key: string\]: (.+?);?\s*\}$/);
  if (map) {
    if (typeof value === "object") for (const [k, v] of Object.entries(value)) checkType(v, map[1], shape, `${path}.${k}`, errors);
    return;
  }
  const file = shape.imports.get(type.trim());
  if (file && typeof value === "object" && !Array.isArray(value)) checkObject(value, file, path, errors);
}

export function checkObject(obj, file, path, errors) {
  if (!existsSync(file)) return;
  const shape = load(file);
  if (!shape) return; // a type alias (IntOrString, Quantity, ...): a leaf
  for (const [k, v] of Object.entries(obj)) {
    const type = shape.fields.get(k);
    if (type === undefined) {
      errors.push(`${path}.${k}: unknown field`);
      continue;
    }
    checkType(v, type, shape, `${path}.${k}`, errors);
  }
}

// The .d.ts of a top-level kind.
export function kindFile(apiVersion, kind) {
  const pkg = apiVersion.startsWith("monitoring.coreos.com/")
    ? "@kubernetes-models/prometheus-operator"
    : "kubernetes-models";
  return join(nodeModules, pkg, apiVersion, `${kind}.d.ts`);
}
