// nestor's own metrics, emitted from the workflow through the SDK's replay-aware meter: a replayed history counts
// nothing twice. They reach the same Prometheus endpoint as the SDK's runtime metrics.
import { metricMeter } from '@temporalio/workflow';
import { METRICS } from '../../shared/constants';

export const conversationMetrics = () => ({
  starts: metricMeter.createCounter(METRICS.starts, 'conversations', 'Conversations started (first run only)'),
  startFailures: metricMeter.createCounter(
    METRICS.startFailures,
    'conversations',
    'Starts that ended in ERROR, by step',
  ),
  timeToReady: metricMeter.createHistogram(METRICS.timeToReady, 'int', 'ms', 'Workflow start to RUNNING'),
  messagesDelivered: metricMeter.createCounter(
    METRICS.messagesDelivered,
    'messages',
    'Messages accepted by the nested server',
  ),
  pauses: metricMeter.createCounter(
    METRICS.pauses,
    'conversations',
    'Conversations paused (idle, asked, or over the user limit)',
  ),
  resumes: metricMeter.createCounter(METRICS.resumes, 'conversations', 'Paused conversations brought back to RUNNING'),
  resumeFailures: metricMeter.createCounter(METRICS.resumeFailures, 'conversations', 'Resumes that failed, by step'),
  recoveries: metricMeter.createCounter(
    METRICS.recoveries,
    'conversations',
    'Sandboxes brought back after they stopped answering a delivery',
  ),
});
