// What a resume schedule carries: the input of ResumeConversation, shared by the schedule helpers, the workflow and
// its activity.

/** What a resume schedule starts ResumeConversation with. */
export interface ResumeConversationInput {
  conversationId: string;
  /** Delivered after the resume, once (the run's workflow ID is its message ID). */
  message?: string;
}

/** What the resumeConversation activity gets: the schedule's input and the ID that deduplicates its message. */
export interface ResumeActivityInput extends ResumeConversationInput {
  /** Deduplicates the message when the activity is retried. */
  messageId?: string;
}
