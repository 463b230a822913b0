// Validates Kubernetes objects against the API schema of the npm package kubernetes-models (generated from
// Kubernetes' OpenAPI definitions, checked by @kubernetes-models/validate): types, required fields, enums and
// formats (quantities, ports). Unknown fields are not its job: the C# side loads every object strictly with
// KubernetesClient first, which rejects them.
//   node validate.mjs OBJECTS.json      (a JSON array of objects)
// Prints one line per problem, "Kind/name: path message", and exits 1 if there was any; 2 on bad usage.
import { readFileSync } from "node:fs";

if (process.argv.length !== 3) {
  console.error("usage: node validate.mjs OBJECTS.json");
  process.exit(2);
}
const objects = JSON.parse(readFileSync(process.argv[2], "utf8"));
let problems = 0;
for (const object of objects) {
  const name = `${object.kind}/${object.metadata?.name ?? "?"}`;
  let model;
  try {
    model = (await import(`kubernetes-models/${object.apiVersion}/${object.kind}`))[object.kind];
  } catch {
    model = undefined;
  }
  if (!model) {
    console.log(`${name}: no schema for apiVersion ${object.apiVersion} kind ${object.kind}`);
    problems++;
    continue;
  }
  try {
    new model(object).validate();
  } catch (error) {
    for (const line of String(error.message).split(", ")) console.log(`${name}: ${line.replace(/^data\//, "")}`);
    problems++;
  }
}
console.log(`validated ${objects.length} objects, ${problems} with problems`);
process.exit(problems === 0 ? 0 : 1);
