// The process-wide Temporal Runtime of a worker: JSON logs (ours, the SDK's and Core's, forwarded) and, when a port is
// set, a Prometheus endpoint on 127.0.0.1 with the SDK's metrics and nestor's own (src/conversation/workflow/metrics.ts).
import { Runtime, makeTelemetryFilterString } from '@temporalio/worker';
import { METRICS } from '../shared/constants';
import type { NestorConfig } from '../config';
import { JsonLogger } from './log';

/** Time-to-ready buckets (ms): a container start takes about half a second here, an image pull minutes. */
export const TIME_TO_READY_BUCKETS_MS = [
  100, 250, 500, 750, 1000, 1500, 2000, 3000, 5000, 10_000, 30_000, 60_000, 120_000,
];

export function installRuntime(
  c: Pick<NestorConfig, 'logLevel' | 'metricsPort'>,
  write?: (line: string) => void,
): Runtime {
  return Runtime.install({
    logger: new JsonLogger({ level: c.logLevel, write }),
    telemetryOptions: {
      logging: { forward: {}, filter: makeTelemetryFilterString({ core: 'WARN', other: 'ERROR' }) },
      ...(c.metricsPort > 0 && {
        metrics: {
          prometheus: {
            bindAddress: `127.0.0.1:${c.metricsPort}`,
            histogramBucketOverrides: { [METRICS.timeToReady]: TIME_TO_READY_BUCKETS_MS },
          },
        },
      }),
    },
  });
}
