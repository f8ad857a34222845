// tests/openapi/check.mjs — document-vs-server check, run by tests/test_rest_openapi.
//
//   node check.mjs DOC.yaml RECORD_DIR
//
// 1. DOC (the document the server served) must be a valid OpenAPI 3.1
//    document (@seriousme/openapi-schema-validator, the OAS 3.1 JSON schema).
// 2. Every recorded exchange (RECORD_DIR/*.jsonl: method, path, status,
//    headers, body — written by the REST suites) must match the document:
//    the operation exists, the status is documented for it, the body
//    validates against that response's schema and the headers against its
//    header schemas (openapi-backend).  A response for a path or method the
//    document does not list must be the documented Error envelope (404/405).
// 3. Every operation of the document was exercised at least once.
// Prints a summary; exits 1 on any mismatch (first 30 shown), 2 on bad usage.
import { Validator } from "@seriousme/openapi-schema-validator";
import OpenAPIBackend from "openapi-backend";
import Ajv2020 from "ajv/dist/2020.js";
import YAML from "yaml";
import fs from "node:fs";
import path from "node:path";

const [docPath, recordDir] = process.argv.slice(2);
if (!docPath || !recordDir) {
  console.error("usage: node check.mjs DOC.yaml RECORD_DIR");
  process.exit(2);
}

const doc = YAML.parse(fs.readFileSync(docPath, "utf8"));
const docCheck = await new Validator().validate(structuredClone(doc));
if (!docCheck.valid) {
  console.error("the served document is not valid OpenAPI 3.1:");
  console.error(JSON.stringify(docCheck.errors, null, 2).slice(0, 4000));
  process.exit(1);
}
if (!String(doc.openapi).startsWith("3.1")) {
  console.error(`openapi: ${doc.openapi} (want 3.1.x)`);
  process.exit(1);
}

// quick: skip openapi-backend's own (OpenAPI 3.0) document check; the 3.1
// check above is the one that applies.
const Backend = OpenAPIBackend.default ?? OpenAPIBackend;
const api = new Backend({ definition: structuredClone(doc), quick: true, validate: true });
await api.init();

const ajv = new Ajv2020({ strict: false, allErrors: true });
ajv.addSchema(doc, "doc");
const errorEnvelope = ajv.getSchema("doc#/components/schemas/Error");

const failures = [];
const seen = new Map();
let count = 0;

function fail(rec, why) {
  failures.push(`${rec.method} ${rec.path} -> ${rec.status}: ${why}\n    body: ${JSON.stringify(rec.body).slice(0, 300)}`);
}

const files = fs.existsSync(recordDir) ? fs.readdirSync(recordDir).filter((f) => f.endsWith(".jsonl")) : [];
for (const file of files) {
  const lines = fs.readFileSync(path.join(recordDir, file), "utf8").split("\n").filter(Boolean);
  for (const line of lines) {
    let rec;
    try {
      rec = JSON.parse(line);
    } catch (e) {
      failures.push(`${file}: unreadable record: ${e.message}`);
      continue;
    }
    count++;
    const [pathOnly, query = ""] = rec.path.split("?");
    const op = api.router.matchOperation({ method: rec.method.toLowerCase(), path: pathOnly, query, headers: {} });
    if (!op) {
      // Not an operation of the document: only the generic error answers may come back.
      if (![404, 405].includes(rec.status)) fail(rec, "no operation in the document for this request");
      else if (!errorEnvelope(rec.body)) fail(rec, "not the Error envelope: " + ajv.errorsText(errorEnvelope.errors));
      continue;
    }
    seen.set(op.operationId, (seen.get(op.operationId) ?? 0) + 1);
    const documented = op.responses && op.responses[String(rec.status)];
    if (!documented) {
      // The router refuses some paths the document's template would match
      // ("..%2F", "%2e%2e"): those get the generic 404 envelope.
      if (rec.status === 404 && rec.body && rec.body.details && rec.body.details.path && errorEnvelope(rec.body)) continue;
      fail(rec, `status ${rec.status} is not documented for ${op.operationId}`);
      continue;
    }
    const body = rec.status === 204 ? null : rec.body;
    const res = api.validator.validateResponse(body, op, rec.status);
    if (res.errors && res.errors.length) fail(rec, "body: " + JSON.stringify(res.errors).slice(0, 600));
    // Header values are checked against their schemas ("any": openapi-backend
    // would otherwise treat every documented header as required) ...
    const hdr = api.validator.validateResponseHeaders(rec.headers, op, { statusCode: rec.status, setMatchType: "any" });
    if (hdr.errors && hdr.errors.length) fail(rec, "headers: " + JSON.stringify(hdr.errors).slice(0, 600));
    // ... and the ones the document marks required: true must be present.
    for (const [name, h] of Object.entries(documented.headers ?? {})) {
      if (h.required && !(name.toLowerCase() in rec.headers)) fail(rec, `required header ${name} is missing`);
    }
  }
}

const ops = [];
for (const [p, item] of Object.entries(doc.paths)) {
  for (const m of ["get", "post", "put", "delete", "patch"]) if (item[m]) ops.push(item[m].operationId ?? `${m} ${p}`);
}
const unexercised = ops.filter((o) => !seen.has(o));

console.log(`${count} recorded responses from ${files.length} files checked against ${ops.length} operations`);
for (const o of ops) console.log(`  ${o}: ${seen.get(o) ?? 0}`);
if (count === 0) failures.push("no recorded responses (did the REST suites run first?)");
for (const o of unexercised) failures.push(`operation ${o} was never exercised by the suite`);
if (failures.length) {
  console.error(`${failures.length} mismatches between the server and its document:`);
  for (const f of failures.slice(0, 30)) console.error("  " + f);
  process.exit(1);
}
console.log("every response matches the served document");
