// Loaded into the worker under test with `node --require` (FaultLab, runtime `openhands`): every sandbox `/api` request
// goes to the fault proxy (proxy.ts) instead, which forwards it to the sandbox named in a header. Nothing else changes:
// nestor's nested clients use undici's global dispatcher, so the worker's code runs as in production.
import { Agent, setGlobalDispatcher, type Dispatcher } from 'undici';
import { PROXY_ENV, UPSTREAM_HEADER } from './proxy';

const proxy = process.env[PROXY_ENV];
if (proxy) {
  const viaProxy: Dispatcher.DispatcherComposeInterceptor = (dispatch) => (opts, handler) => {
    const origin = String(opts.origin ?? '');
    if (origin === proxy || !opts.path.startsWith('/api/')) return dispatch(opts, handler);
    const headers = opts.headers;
    if (headers && (Array.isArray(headers) || typeof headers[Symbol.iterator as never] === 'function'))
      throw new Error('via-proxy: nestor sends headers as an object; got another form');
    return dispatch(
      { ...opts, origin: proxy, headers: { ...(headers as Record<string, string>), [UPSTREAM_HEADER]: origin } },
      handler,
    );
  };
  setGlobalDispatcher(new Agent().compose(viaProxy));
}
