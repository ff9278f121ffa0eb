// Which update failures ConversationClient sends again (same message ID) and which are answers.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ServiceError, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { retryableUpdateFailure } from '../../src/conversation/client-failures';

/** What the client raises for a gRPC error of the update call: a ServiceError whose cause is the gRPC error. */
const grpc = (code: number, details: string) =>
  new ServiceError('Workflow Update failed', {
    cause: Object.assign(new Error(`${code} ${details}`), { code, details }),
  });

describe('retryable update failures', () => {
  test('the server’s "not now" answers are sent again', () => {
    assert.ok(retryableUpdateFailure(grpc(14, 'workflow update was aborted')));
    assert.ok(retryableUpdateFailure(grpc(9, 'workflow is closing')));
    assert.ok(
      retryableUpdateFailure(grpc(8, 'limit on number of concurrent in-flight updates has been reached (500)')),
    );
    // The workflow task that carried the update failed as the server completed it: the update took no effect.
    assert.ok(
      retryableUpdateFailure(
        grpc(9, 'Unable to perform workflow execution update due to unexpected workflow task failure.'),
      ),
    );
    assert.ok(
      retryableUpdateFailure(
        new WorkflowUpdateFailedError('Workflow Update failed', ApplicationFailure.create({ type: 'ContinuingAsNew' })),
      ),
    );
  });

  test('answers are not', () => {
    assert.ok(
      !retryableUpdateFailure(
        new WorkflowUpdateFailedError(
          'Workflow Update failed',
          ApplicationFailure.create({ type: 'NestedBadRequest' }),
        ),
      ),
    );
    assert.ok(!retryableUpdateFailure(grpc(3, 'invalid argument')));
    assert.ok(!retryableUpdateFailure(new Error('something else')));
  });
});
