/**
 * A real OpenID provider (panva's certified `oidc-provider`) playing the corporate IdP, on 127.0.0.1:0.
 * One confidential client (`gatehouse`, client_secret_basic) whose redirect URI is the built-in AS callback;
 * any login name works (devInteractions: plain HTML login and consent forms), and configured users carry a
 * `groups` claim (scope `groups`, delivered through UserInfo as a conformant provider does).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TestIdp extends AsyncDisposable {
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string;
  close(): Promise<void>;
}

export interface TestIdpOptions {
  /** Where the IdP may send the browser back to (the AS callback). */
  redirectUris: string[];
  /** login name → groups; unknown names log in with no groups. */
  users?: Record<string, { groups: string[] }>;
}

/** The part of oidc-provider we use (it ships no type declarations). */
interface ProviderInstance {
  callback(): (req: unknown, res: unknown) => void;
}
type ProviderCtor = new (issuer: string, config: Record<string, unknown>) => ProviderInstance;

export const IDP_CLIENT_ID = 'gatehouse';
export const IDP_CLIENT_SECRET = 'idp-client-secret-for-tests-only-0123456789';

export async function startOidcIdp(opts: TestIdpOptions): Promise<TestIdp> {
  // A non-literal specifier: the module has no types, and we only need the constructor.
  const specifier = 'oidc-provider';
  const { default: Provider } = (await import(specifier)) as { default: ProviderCtor };
  const users = opts.users ?? {};

  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: IDP_CLIENT_ID,
        client_secret: IDP_CLIENT_SECRET,
        redirect_uris: opts.redirectUris,
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    scopes: ['openid', 'groups'],
    claims: { openid: ['sub'], groups: ['groups'] },
    findAccount: (_ctx: unknown, id: string) => ({
      accountId: id,
      claims: () => ({ sub: id, groups: users[id]?.groups ?? [] }),
    }),
    features: { devInteractions: { enabled: true } },
    pkce: { required: () => true },
    cookies: { keys: ['idp-cookie-key-for-tests-only'] },
    ttl: { Session: 600, Interaction: 600, Grant: 600, AccessToken: 300, IdToken: 300, AuthorizationCode: 60 },
  });
  server.on('request', provider.callback());

  const close = async (): Promise<void> => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return { issuer, clientId: IDP_CLIENT_ID, clientSecret: IDP_CLIENT_SECRET, close, [Symbol.asyncDispose]: close };
}
