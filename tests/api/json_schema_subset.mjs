// A validator for the JSON Schema subset the server supports for response_format (type,
// properties, required, additionalProperties, items, enum, const, anyOf, minItems, maxItems,
// minLength, maxLength), written independently of the server's matcher so a test can catch it.
// Returns the list of violations ([] when `value` is valid).
const equal = (a, b) => JSON.stringify(a) === JSON.stringify(b);

function typeOk(value, type) {
  switch (type) {
    case "object": return value !== null && typeof value === "object" && !Array.isArray(value);
    case "array": return Array.isArray(value);
    case "string": return typeof value === "string";
    case "number": return typeof value === "number";
    case "integer": return Number.isInteger(value);
    case "boolean": return typeof value === "boolean";
    case "null": return value === null;
    default: throw new Error(`unknown type ${type}`);
  }
}

export function validate(value, schema, at = "$") {
  if (schema === true) return [];
  const errors = [];
  if (schema.anyOf) {
    if (!schema.anyOf.some((s) => validate(value, s, at).length === 0)) errors.push(`${at}: no anyOf alternative`);
    return errors;
  }
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    if (!types.some((t) => typeOk(value, t))) return [`${at}: not of type ${types.join("|")}`];
  }
  if ("const" in schema && !equal(value, schema.const)) errors.push(`${at}: not the const`);
  if (schema.enum && !schema.enum.some((e) => equal(e, value))) errors.push(`${at}: not in the enum`);
  if (typeOk(value, "string")) {
    const n = [...value].length;
    if (schema.minLength !== undefined && n < schema.minLength) errors.push(`${at}: shorter than minLength`);
    if (schema.maxLength !== undefined && n > schema.maxLength) errors.push(`${at}: longer than maxLength`);
  }
  if (typeOk(value, "array")) {
    if (schema.minItems !== undefined && value.length < schema.minItems) errors.push(`${at}: fewer than minItems`);
    if (schema.maxItems !== undefined && value.length > schema.maxItems) errors.push(`${at}: more than maxItems`);
    if (schema.items) value.forEach((v, i) => errors.push(...validate(v, schema.items, `${at}[${i}]`)));
  }
  if (typeOk(value, "object")) {
    const props = schema.properties ?? {};
    for (const name of schema.required ?? []) if (!(name in value)) errors.push(`${at}: missing ${name}`);
    for (const [k, v] of Object.entries(value)) {
      if (k in props) errors.push(...validate(v, props[k], `${at}.${k}`));
      else if (schema.additionalProperties === false) errors.push(`${at}: additional property ${k}`);
      else if (typeof schema.additionalProperties === "object") errors.push(...validate(v, schema.additionalProperties, `${at}.${k}`));
    }
  }
  return errors;
}
