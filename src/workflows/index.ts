export { StartConversation } from './start-conversation';
export { ResumeConversation } from './resume-conversation';
export { UserSessions } from './user-sessions';
export { ReapOrphanRuntimes } from './reaper';
