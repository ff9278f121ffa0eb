// JSON Schema files for callers in other languages, generated from the zod schemas (npm run schemas).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { PUBLISHED_SCHEMAS } from './schemas';

export const SCHEMA_DIR = resolve(__dirname, __dirname.includes('/dist/') ? '../../../schemas' : '../../schemas');

/** Each published schema as the text of its file. */
export function renderSchemas(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, schema] of Object.entries(PUBLISHED_SCHEMAS)) {
    const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
    out[`${name}.schema.json`] = `${JSON.stringify({ title: name, ...json }, null, 2)}\n`;
  }
  return out;
}

if (require.main === module && process.argv[2] === 'write') {
  mkdirSync(SCHEMA_DIR, { recursive: true });
  for (const [file, text] of Object.entries(renderSchemas())) writeFileSync(join(SCHEMA_DIR, file), text);
  console.log(`wrote ${Object.keys(PUBLISHED_SCHEMAS).length} schemas to ${SCHEMA_DIR}`);
}
