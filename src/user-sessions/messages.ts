// Message definitions and IDs of UserSessions, shared by the workflow, the conversation that asks it for a slot, and
// the activities that take and give back slots.
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';

export function userSessionsWorkflowId(userId: string): string {
  return `user-sessions-${userId}`;
}

export interface Slot {
  conversationId: string;
  status: 'STARTING' | 'RUNNING';
  lastActiveAt: number;
  evicting?: boolean;
}

export interface UserSessionsInput {
  userId: string;
  /** Most conversations (STARTING or RUNNING) at once. */
  limit: number;
  slots?: Slot[];
}

export interface SlotGrant {
  conversationId: string;
  /** Conversations paused to make room. */
  evicted: string[];
}

export const acquireSlotUpdate = defineUpdate<SlotGrant, [{ conversationId: string; limit?: number }]>('acquire');
export const releaseSlotSignal = defineSignal<[{ conversationId: string }]>('release');
/** Marks activity (a delivered message) or readiness, so eviction picks the least recently active. */
export const touchSlotSignal = defineSignal<[{ conversationId: string; running?: boolean }]>('touch');
export const slotsQuery = defineQuery<Slot[]>('slots');
