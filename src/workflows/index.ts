export { StartConversation } from './start-conversation';
