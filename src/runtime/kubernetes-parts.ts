// What the Kubernetes provider asks the API server and how it reads the answers: a status code of a failed call, a
// pod's state in the words the workflow and the reaper use for Docker's containers, waiting for a pod's address or for
// an object to be gone, and what to say when a pod will not run.
import type { CoreV1Api, NetworkingV1Api, V1ObjectMeta, V1Pod } from '@kubernetes/client-node';
import { LABELS } from '../shared/constants';
import { ErrorType, NestorError } from '../errors';
import { runtimeSummary } from './ownership';
import type { RuntimeHandle, RuntimeSummary } from './provider';
import { SESSION_KEY_ENV } from './container-spec';
import { protocolOfKind } from './image-manifest';
import { KIND_ANNOTATION, identityLabels } from './pod-spec';

export interface KubeClients {
  core: CoreV1Api;
  net: NetworkingV1Api;
}

/**
 * The API clients of a kubeconfig (KUBECONFIG, ~/.kube/config or the pod's service account when none is named). The
 * client library is loaded here, on first use, by a worker that runs sandboxes on Kubernetes only: it adds a third
 * of a second to every process that loads it.
 */
export async function kubeClients(kubeconfig: string | undefined): Promise<KubeClients> {
  const k = await import('@kubernetes/client-node');
  const kc = new k.KubeConfig();
  if (kubeconfig) kc.loadFromFile(kubeconfig);
  else kc.loadFromDefault();
  return { core: kc.makeApiClient(k.CoreV1Api), net: kc.makeApiClient(k.NetworkingV1Api) };
}

/** Where a running pod's server answers and the key it checks (from its environment Secret, decoded). */
export function handleOfPod(pod: V1Pod, env: Record<string, string>, adopted: boolean): RuntimeHandle {
  const protocol = protocolOfKind(pod.metadata?.annotations?.[KIND_ANNOTATION]);
  const sessionApiKey = env[SESSION_KEY_ENV[protocol]];
  if (!sessionApiKey)
    throw new NestorError(
      ErrorType.RuntimeStartFailed,
      `the secret of pod ${pod.metadata?.name} has no session key (${SESSION_KEY_ENV[protocol]})`,
      false,
    );
  return {
    runtimeId: pod.metadata!.uid!,
    url: `http://${pod.status!.podIP}:${pod.spec?.containers[0]?.ports?.[0]?.containerPort}`,
    sessionApiKey,
    adopted,
    protocol,
  };
}

/** A JSON Patch operation (the client's default patch type). */
export type PatchOp = { op: 'add'; path: string; value: unknown };
const pointer = (key: string) => key.replace(/~/g, '~0').replace(/\//g, '~1');
export const labelOp = (key: string, value: string): PatchOp => ({
  op: 'add',
  path: `/metadata/labels/${pointer(key)}`,
  value,
});
export const annotationOp = (key: string, value: string): PatchOp => ({
  op: 'add',
  path: `/metadata/annotations/${pointer(key)}`,
  value,
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The HTTP status of a failed API call (the client's ApiException), if it was one. */
export function statusOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'number' ? code : undefined;
}

/** The value of `call`, or undefined when the object is not there (404). */
export async function orAbsent<T>(call: Promise<T>): Promise<T | undefined> {
  try {
    return await call;
  } catch (err) {
    if (statusOf(err) === 404) return undefined;
    throw err;
  }
}

/** Run `call`; true when it did its work, false when the object was already there (409) or gone (404). */
export async function idempotent(call: Promise<unknown>): Promise<boolean> {
  try {
    await call;
    return true;
  } catch (err) {
    if (statusOf(err) === 409 || statusOf(err) === 404) return false;
    throw err;
  }
}

/** Waiting reasons that no wait mends: the image is not on the node, or the pod cannot be made as specified. */
const HOPELESS = /^(ErrImageNeverPull|InvalidImageName|ErrImagePull|ImagePullBackOff|CreateContainerConfigError)$/;

/**
 * A pod's state in Docker's words, which the start (waitAlive) and the reaper act on: `running` (it runs, or is being
 * set up), `restarting` (its server exits and the kubelet brings it back: a crash loop), `dead` (it cannot run: no
 * image, a bad spec, failed), `exited` (succeeded, or being deleted).
 */
export function podState(pod: V1Pod): string {
  if (pod.metadata?.deletionTimestamp) return 'exited';
  const phase = pod.status?.phase;
  if (phase === 'Failed') return 'dead';
  if (phase === 'Succeeded') return 'exited';
  const c = pod.status?.containerStatuses?.[0];
  const waiting = c?.state?.waiting?.reason ?? '';
  if (HOPELESS.test(waiting)) return 'dead';
  if (waiting === 'CrashLoopBackOff' || ((c?.restartCount ?? 0) > 0 && !c?.state?.running)) return 'restarting';
  return 'running';
}

/** What a pod is doing, for failure messages: its phase, its container's state, and why. */
export function describePod(pod: V1Pod): string {
  const c = pod.status?.containerStatuses?.[0];
  const waiting = c?.state?.waiting;
  const ended = c?.state?.terminated ?? c?.lastState?.terminated;
  const parts = [`pod ${pod.metadata?.name} is ${pod.status?.phase ?? 'unknown'}`];
  if (waiting) parts.push(`its container waits (${waiting.reason}${waiting.message ? `: ${waiting.message}` : ''})`);
  if (ended) parts.push(`it exited with code ${ended.exitCode}${ended.reason ? ` (${ended.reason})` : ''}`);
  if ((c?.restartCount ?? 0) > 0) parts.push(`restarted ${c?.restartCount} times`);
  const unscheduled = pod.status?.conditions?.find((x) => x.type === 'PodScheduled' && x.status === 'False');
  if (unscheduled) parts.push(`not scheduled: ${unscheduled.message ?? unscheduled.reason}`);
  return parts.join('; ');
}

/**
 * Wait until the pod has an address (the kubelet made its sandbox), which is all the start needs: the workflow then
 * waits for its server's /alive. A pod that cannot run (no image on the node, a bad spec) fails at once, saying why.
 */
export async function waitPodAddress(
  core: CoreV1Api,
  namespace: string,
  name: string,
  timeoutMs: number,
): Promise<V1Pod> {
  const started = Date.now();
  for (let delay = 50; ; delay = Math.min(1000, delay * 2)) {
    const pod = await orAbsent(core.readNamespacedPod({ name, namespace }));
    if (!pod)
      throw new NestorError(ErrorType.RuntimeStartFailed, `pod ${name} was deleted while it was starting`, true);
    if (pod.status?.podIP && !pod.metadata?.deletionTimestamp) return pod;
    if (podState(pod) === 'dead') {
      throw new NestorError(
        ErrorType.RuntimeStartFailed,
        `${describePod(pod)}; check that the image is on every node (or in a registry they pull from) and the pod spec`,
        false,
      );
    }
    if (Date.now() - started > timeoutMs) {
      throw new NestorError(
        ErrorType.RuntimeStartFailed,
        `pod ${name} got no address within ${timeoutMs} ms: ${describePod(pod)}`,
        true,
      );
    }
    await sleep(delay);
  }
}

/** Wait until `read` finds nothing (an object being deleted is gone), or fail after `timeoutMs`. */
export async function waitGone(read: () => Promise<unknown>, what: string, timeoutMs: number): Promise<void> {
  const started = Date.now();
  for (let delay = 50; (await orAbsent(read())) !== undefined; delay = Math.min(1000, delay * 2)) {
    if (Date.now() - started > timeoutMs) {
      throw new NestorError(
        ErrorType.RuntimeStartFailed,
        `${what} was still being deleted after ${timeoutMs} ms; check its finalizers (kubectl describe)`,
        true,
      );
    }
    await sleep(delay);
  }
}

/** The last lines a pod's server wrote, or '' when there are none (not started yet, or gone). */
export async function lastPodLogLines(core: CoreV1Api, namespace: string, name: string, lines = 20): Promise<string> {
  try {
    const log = await core.readNamespacedPodLog({ name, namespace, tailLines: lines });
    return String(log ?? '').trim();
  } catch {
    return '';
  }
}

/** What `list` and `inspect` say of a conversation's pod or (paused) claim, from its exact annotations. */
export function summaryOf(meta: V1ObjectMeta, state: string): RuntimeSummary {
  const created = (meta.creationTimestamp ? new Date(meta.creationTimestamp) : new Date(0)).toISOString();
  const s = runtimeSummary('', meta.uid ?? '', meta.name ?? '', identityLabels(meta) ?? {}, state, created);
  // An unclaimed pool member (booting or ready) is no conversation's: the reaper asks its pool's workflow.
  const poolState = meta.labels?.['nestor.pool-state'];
  if (poolState !== 'booting' && poolState !== 'ready') return s;
  const pool = { name: meta.annotations?.[LABELS.pool] ?? '', memberId: meta.labels?.[LABELS.poolMember] ?? '' };
  return { ...s, conversationId: '', userId: '', pool };
}
