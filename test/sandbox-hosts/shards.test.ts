// The host registry's shards, as pure functions: which shard places a conversation, each shard's share of a host's
// capacity, and a shard's share of the sandboxes a host worker counted.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  capacityShare,
  hostLoad,
  registryShards,
  registryWorkflowId,
  shardOf,
  shardsMismatch,
} from '../../src/sandbox-hosts/messages';

test("every shard's share of a host adds up to its capacity, no two shares apart by more than one", () => {
  for (const of of [1, 2, 3, 8, 64])
    for (const capacity of [1, 2, 3, 10, 97, 10_000])
      for (const hostId of ['h1', 'h2', 'gpu-7']) {
        const shares = registryShards(of).map((s) => capacityShare(capacity, hostId, s));
        assert.equal(
          shares.reduce((a, b) => a + b, 0),
          capacity,
        );
        assert.ok(Math.max(...shares) - Math.min(...shares) <= 1, `${capacity} over ${of}: ${shares}`);
      }
  assert.equal(capacityShare(10, 'h1', { index: 0, of: 1 }), 10, 'one shard: the whole host');
});

test('small hosts do not all give their spare room to the same shard', () => {
  const firsts = new Set(
    Array.from({ length: 40 }, (_, n) => registryShards(4).findIndex((s) => capacityShare(1, `host-${n}`, s) === 1)),
  );
  assert.ok(firsts.size > 1, `40 hosts of capacity 1 over 4 shards all chose ${[...firsts]}`);
});

test('a conversation has one shard, the same every time; IDs spread over all of them', () => {
  const ids = Array.from({ length: 400 }, (_, n) => `conv-${n}-${n * 7919}`);
  for (const id of ids) assert.deepEqual(shardOf(id, 4), shardOf(id, 4));
  const counts = [0, 0, 0, 0];
  for (const id of ids) counts[shardOf(id, 4).index]++;
  assert.ok(Math.min(...counts) > 50, `400 IDs over 4 shards: ${counts}`);
  assert.deepEqual(shardOf('anything', 1), { index: 0, of: 1 });
});

test("the first shard keeps the registry's workflow ID; the others are numbered", () => {
  assert.deepEqual(
    registryShards(3).map((s) => registryWorkflowId(s.index)),
    ['sandbox-hosts', 'sandbox-hosts-1', 'sandbox-hosts-2'],
  );
});

test("a shard counts its share of the sandboxes a host's worker counted", () => {
  assert.equal(hostLoad({ placed: [], sandboxes: 9, capacity: 3, declaredCapacity: 9 }), 3);
  assert.equal(hostLoad({ placed: ['a', 'b', 'c', 'd'], sandboxes: 9, capacity: 3, declaredCapacity: 9 }), 4);
  assert.equal(hostLoad({ placed: [], sandboxes: 1, capacity: 1, declaredCapacity: 4 }), 1, 'rounded up');
  assert.equal(hostLoad({ placed: [], sandboxes: 7, capacity: 10 }), 7, 'one shard: the whole count');
});

test("a shard accepts its own count or none (an earlier caller's), and names both counts otherwise", () => {
  assert.equal(shardsMismatch({ index: 0, of: 1 }, undefined), undefined);
  assert.equal(shardsMismatch({ index: 2, of: 4 }, 4), undefined);
  const why = shardsMismatch({ index: 2, of: 4 }, 8) ?? '';
  assert.match(
    why,
    /^shards: registry sandbox-hosts-2 runs as shard 2 of 4, the caller has NESTOR_HOST_REGISTRY_SHARDS=8/,
  );
  assert.match(shardsMismatch({ index: 0, of: 1 }, 'x') ?? '', /NESTOR_HOST_REGISTRY_SHARDS="x"/);
});
