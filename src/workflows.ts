export { StartConversation } from './conversation/workflow';
export { ResumeConversation } from './resume-schedules/workflow';
export { UserSessions } from './user-sessions/workflow';
export { ReapOrphanRuntimes } from './reaper/workflow';
export { SandboxPool } from './sandbox-pools/workflow';
export { SandboxHosts } from './sandbox-hosts/workflow';
