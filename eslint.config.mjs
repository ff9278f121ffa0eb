// Lint: typescript-eslint's recommended rules, unused code as errors, promises always awaited (type-aware), imports
// without duplicates, and the size limits that keep each function and module readable in one sitting (src/ only:
// tests and scripts are read as scenarios, top to bottom).
import js from '@eslint/js';
import importX from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

/** node:test's suite and hook functions: their promises are the runner's to await. */
const NODE_TEST_CALLS = ['describe', 'suite', 'test', 'it', 'before', 'after', 'beforeEach', 'afterEach'];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.tools/**', '.nestor/**', 'emulator/dist/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { console: 'readonly', process: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
      '@typescript-eslint/no-explicit-any': 'off',
      'no-empty': ['error', { allowEmptyCatch: true }],
    },
  },
  {
    // One import statement per module, and imports in three groups: Node's, packages', the project's own.
    plugins: { 'import-x': importX },
    rules: {
      'import-x/no-duplicates': 'error',
      'import-x/first': 'error',
      'import-x/order': ['error', { groups: ['builtin', 'external', ['parent', 'sibling', 'index']] }],
    },
  },
  {
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { module: 'writable', require: 'readonly' } },
  },
  {
    // Type-aware rules: a promise nobody awaits (in a workflow, an activity, a handler, a test's step) fails silently
    // or lets the code run on before its work is done.
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: NODE_TEST_CALLS }] },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
    },
  },
  {
    // A test's or a script's async request handler that throws crashes its process, which is what a test wants.
    files: ['test/**/*.ts', 'scripts/**/*.ts'],
    rules: { '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }] },
  },
  {
    files: ['src/**/*.ts'],
    rules: {
      'max-lines-per-function': ['error', { max: 80, skipBlankLines: true, skipComments: true, IIFEs: true }],
      'max-lines': ['error', { max: 300, skipBlankLines: true }],
    },
  },
);
