// The workflow bundle as the worker builds it: the input schemas are loaded once per worker thread (preloaded through
// src/shared/workflow-preload.ts), never as a module every workflow evaluates for itself. Each cached workflow held
// its own set before (4.6 MB per live conversation; bench/history.md), and the regression would be silent: webpack
// drops a preload it thinks has no side effects, and a direct import from workflow code brings the copies back.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { workflowBundle } from '../helpers/temporal';

describe('the workflow bundle', () => {
  test('preloads the schemas holder, and only it reaches the schemas module', async () => {
    const { code } = await workflowBundle();
    const preload = /exports\.preloadModules = function preloadModules\(\) \{([\s\S]*?)\n\}/.exec(code)?.[1] ?? '';
    assert.match(preload, /__webpack_require__\([^)]*"\.\/dist\/src\/shared\/workflow-preload\.js"\)/);
    // Every place that requires the schemas module: only the holder's lazy require.
    const requires = [...code.matchAll(/^.*__webpack_require__\([^)]*"\.\/dist\/src\/shared\/schemas\.js"\).*$/gm)];
    assert.equal(requires.length, 1, requires.map((m) => m[0].trim()).join('\n'));
    assert.match(requires[0][0], /schemas \?\?= __webpack_require__/);
  });
});
