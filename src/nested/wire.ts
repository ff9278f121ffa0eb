// The nested server's JSON as nestor reads and sends it (contract reference §4–§7), and how a user message is
// recognised among its events.

export interface NestedEvent {
  id: number;
  source?: string;
  action?: string;
  observation?: string;
  message?: string;
  args?: Record<string, unknown>;
  extras?: Record<string, unknown>;
  timestamp?: string;
  [k: string]: unknown;
}

export interface EventPage {
  events: NestedEvent[];
  has_more: boolean;
}

export interface ConversationInfo {
  conversation_id: string;
  status: string;
  runtime_status?: string | null;
  [k: string]: unknown;
}

export interface ConversationResponse {
  status: string;
  conversation_id: string;
  message?: string | null;
  conversation_status?: string | null;
}

/** Body of POST /api/conversations (contract §5.1). */
export interface InitSessionRequest {
  conversation_id: string;
  initial_user_msg?: string | null;
  image_urls?: string[];
  replay_json?: string | null;
  mcp_config?: Record<string, unknown> | null;
  repository?: string | null;
  selected_branch?: string | null;
  git_provider?: string | null;
  conversation_instructions?: string | null;
}

/** Whether an event is a user message with this content and these images (an absent list is an empty one). */
export function isUserMessage(e: NestedEvent, content: string, imageUrls: string[] = []): boolean {
  const urls = Array.isArray(e.args?.image_urls) ? (e.args.image_urls as unknown[]) : [];
  return (
    e.source === 'user' &&
    e.action === 'message' &&
    e.args?.content === content &&
    urls.length === imageUrls.length &&
    urls.every((u, i) => u === imageUrls[i])
  );
}
