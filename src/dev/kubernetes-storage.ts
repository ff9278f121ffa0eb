// Dynamic volumes for the local Kubernetes: Rancher's local-path-provisioner (built from the Go module proxy by
// scripts/ensure-kubernetes.sh), run on the host against the API server like any controller, provisions each claim as
// a directory on the node, made and removed by a busybox helper pod. Its StorageClass is the cluster's default, so a
// claim that names no class (what nestor's Kubernetes provider makes by default) is bound on any cluster alike.
import type { ApiAnswer } from './kubernetes-api';
import { SANDBOX_NAMESPACE } from '../runtime/pod-spec';
import { HELPER_IMAGE } from './kubernetes-config';

export const STORAGE_NAMESPACE = 'local-path-storage';
export const STORAGE_CLASS = 'local-path';
const PROVISIONER = 'rancher.io/local-path';
const SERVICE_ACCOUNT = 'local-path-provisioner';
const CONFIG_MAP = 'local-path-config';

/**
 * The objects the provisioner reads (its configuration, its helper pod) and the class that names it; and the namespace
 * nestor's sandboxes go to by default (on any other cluster, its operator makes it).
 */
export function storageObjects(volumesDir: string): Array<{ path: string; body: unknown }> {
  const ns = `/api/v1/namespaces/${STORAGE_NAMESPACE}`;
  return [
    { path: '/api/v1/namespaces', body: { metadata: { name: SANDBOX_NAMESPACE } } },
    { path: '/api/v1/namespaces', body: { metadata: { name: STORAGE_NAMESPACE } } },
    { path: `${ns}/serviceaccounts`, body: { metadata: { name: SERVICE_ACCOUNT } } },
    {
      path: `${ns}/configmaps`,
      body: {
        metadata: { name: CONFIG_MAP },
        data: {
          'config.json': JSON.stringify({
            nodePathMap: [{ node: 'DEFAULT_PATH_FOR_NON_LISTED_NODES', paths: [volumesDir] }],
          }),
          // A volume's directory is open to the sandbox's uid (hostPath volumes take no fsGroup).
          setup: '#!/bin/sh\nset -eu\nmkdir -m 0777 -p "$VOL_DIR"\n',
          teardown: '#!/bin/sh\nset -eu\nrm -rf "$VOL_DIR"\n',
          'helperPod.yaml': JSON.stringify({
            apiVersion: 'v1',
            kind: 'Pod',
            metadata: { name: 'helper-pod' },
            spec: {
              containers: [{ name: 'helper-pod', image: HELPER_IMAGE, imagePullPolicy: 'Never' }],
            },
          }),
        },
      },
    },
    {
      path: '/apis/storage.k8s.io/v1/storageclasses',
      body: {
        metadata: {
          name: STORAGE_CLASS,
          annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' },
        },
        provisioner: PROVISIONER,
        // A directory on a node: the claim is bound where its first pod is scheduled.
        volumeBindingMode: 'WaitForFirstConsumer',
        reclaimPolicy: 'Delete',
      },
    },
  ];
}

/** Create them (already there is fine: the cluster's state outlives its processes). */
export async function applyStorage(
  api: (method: string, path: string, body?: unknown) => Promise<ApiAnswer>,
  volumesDir: string,
): Promise<void> {
  for (const o of storageObjects(volumesDir)) {
    const r = await api('POST', o.path, o.body);
    if (r.status !== 201 && r.status !== 409)
      throw new Error(`creating ${o.path} for the storage provisioner failed (${r.status}): ${JSON.stringify(r.body)}`);
  }
}

/** The provisioner's command line, out of the cluster with the administrator's kubeconfig. */
export function provisionerArgs(kubeconfig: string): string[] {
  return [
    'start',
    `--kubeconfig=${kubeconfig}`,
    `--namespace=${STORAGE_NAMESPACE}`,
    `--configmap-name=${CONFIG_MAP}`,
    `--service-account-name=${SERVICE_ACCOUNT}`,
    `--provisioner-name=${PROVISIONER}`,
    `--helper-image=${HELPER_IMAGE}`,
  ];
}
