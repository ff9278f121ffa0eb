// The docs a newcomer reads first hold: the README fits a screen and opens with the set-up commands, every path and
// link they quote exists, and every TypeScript example compiles as copied against the public entry (src/client.ts).
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, test } from 'node:test';
import ts from 'typescript';
import { PROJECT_ROOT } from '../../src/config';
import { fencedBlocks } from '../helpers/docs';

/** The prose a newcomer reads: the README, CONTRIBUTING, every page of docs/ and the benchmark history. */
const DOCS = [
  'README.md',
  'CONTRIBUTING.md',
  'bench/history.md',
  ...readdirSync(join(PROJECT_ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];
const read = (doc: string) => readFileSync(join(PROJECT_ROOT, doc), 'utf8');

/** The text outside fenced blocks (a path in an example's output is not a claim that the file exists). */
const prose = (text: string) => text.replace(/^```[\s\S]*?^```$/gm, '');

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
const slug = (heading: string) =>
  heading
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replace(/ /g, '-');

/** Files and folders of this repository quoted in backticks: `src/…`, `test/…`, `docs/…` and so on. */
const QUOTED_PATH = /`((?:src|test|scripts|docs|bench|images|emulator|schemas|\.ci)\/[\w./-]*)`/g;

describe('the docs', () => {
  test('the README fits a screen and opens with the two set-up commands; .ci/run calls the test one', () => {
    const readme = read('README.md');
    const lines = readme.split('\n').length;
    assert.ok(lines <= 200, `README.md is ${lines} lines: move the detail to docs/`);
    const top = readme.split('\n').slice(0, 20).join('\n');
    assert.match(top, /npm install && npm start/);
    assert.match(top, /npm install && npm test/);
    assert.match(readFileSync(join(PROJECT_ROOT, '.ci/run'), 'utf8'), /npm test/);
  });

  test('every path quoted in the docs exists', () => {
    const missing: string[] = [];
    for (const doc of DOCS)
      for (const [, path] of prose(read(doc)).matchAll(QUOTED_PATH))
        if (!existsSync(join(PROJECT_ROOT, path))) missing.push(`${doc}: \`${path}\``);
    assert.deepEqual(missing, [], 'quoted paths that do not exist');
  });

  test('every relative link in the docs reaches a file, and its #anchor a heading there', () => {
    const broken: string[] = [];
    for (const doc of DOCS)
      for (const [, target] of prose(read(doc)).matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/.test(target)) continue; // https:, mailto:
        const [file, anchor] = target.split('#');
        const path = file ? resolve(PROJECT_ROOT, dirname(doc), file) : join(PROJECT_ROOT, doc);
        if (!existsSync(path)) {
          broken.push(`${doc}: ${target} (no ${relative(PROJECT_ROOT, path)})`);
          continue;
        }
        if (!anchor) continue;
        const headings = readFileSync(path, 'utf8')
          .split('\n')
          .filter((l) => /^#+ /.test(l))
          .map((l) => slug(l.replace(/^#+ /, '')));
        if (!headings.includes(anchor)) broken.push(`${doc}: ${target} (no heading '#${anchor}')`);
      }
    assert.deepEqual(broken, [], 'broken links');
  });

  test('every TypeScript example compiles as copied into a file at the root of the checkout', () => {
    const config = ts.getParsedCommandLineOfConfigFile(
      join(PROJECT_ROOT, 'tsconfig.json'),
      {},
      {
        ...ts.sys,
        onUnRecoverableConfigFileDiagnostic: (d) => assert.fail(ts.flattenDiagnosticMessageText(d.messageText, '\n')),
      },
    )!;
    // Each example is a file of its own beside package.json, served from memory: nothing is written.
    const examples = new Map<string, { doc: string; line: number; code: string }>();
    for (const doc of DOCS)
      fencedBlocks(read(doc), 'ts').forEach((b, i) =>
        examples.set(join(PROJECT_ROOT, `__example_${doc.replace(/\W/g, '_')}_${i}.ts`), { doc, ...b }),
      );
    assert.ok(examples.size >= 2, 'the README and docs/usage.md each hold a TypeScript example');
    const host = ts.createCompilerHost(config.options);
    const { getSourceFile, fileExists, readFile } = host;
    host.fileExists = (f) => examples.has(f) || fileExists.call(host, f);
    host.readFile = (f) => examples.get(f)?.code ?? readFile.call(host, f);
    host.getSourceFile = (f, v, ...rest) =>
      examples.has(f) ? ts.createSourceFile(f, examples.get(f)!.code, v) : getSourceFile.call(host, f, v, ...rest);
    const program = ts.createProgram([...examples.keys()], { ...config.options, noEmit: true }, host);
    const errors = ts
      .getPreEmitDiagnostics(program)
      .filter((d) => d.file && examples.has(d.file.fileName))
      .map((d) => {
        const ex = examples.get(d.file!.fileName)!;
        const { line } = d.file!.getLineAndCharacterOfPosition(d.start ?? 0);
        return `${ex.doc}:${ex.line + 1 + line}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
      });
    assert.deepEqual(errors, [], 'the examples do not compile');
  });

  test('the examples import nestor only through its public entry', () => {
    for (const doc of DOCS)
      for (const b of fencedBlocks(read(doc), 'ts'))
        for (const [, from] of b.code.matchAll(/from '(\.[^']*)'/g))
          assert.equal(from, './src/client', `${doc}:${b.line}: imports ${from}, not ./src/client`);
  });
});
