// A real OpenID Provider for the staff single sign-on tests: panva/oidc-provider (OpenID
// Certified) on loopback. Configured by one JSON argument:
//   {"port": 0, "clients": [...client metadata...], "accounts": {"<login>": {claims}}}
// The sign-in page is the library's development interaction (any password); an unknown login is
// refused by findAccount; the tests change an account's claims with PUT /__test/accounts/<login>
// (a test hook beside the provider, standing for an administrator at the IdP). First-party clients get their grant without a consent page, as a
// government IdP does for the systems it serves. Prints "READY <issuer>" once listening.
import { generateKeyPair, exportJWK } from 'jose';
import Provider from 'oidc-provider';
import http from 'node:http';

const config = JSON.parse(process.argv[2] ?? '{}');
const accounts = config.accounts ?? {};

const { privateKey } = await generateKeyPair('RS256', { extractable: true });
const jwk = { ...(await exportJWK(privateKey)), kid: 'test-idp-1', alg: 'RS256', use: 'sig' };

const server = http.createServer();
await new Promise((resolve) => server.listen(config.port ?? 0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: config.clients ?? [],
  jwks: { keys: [jwk] },
  cookies: { keys: ['sharehub-test-cookie-key-1'] },
  pkce: { required: () => true },
  scopes: ['openid', 'profile', 'email', 'gov'],
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email'],
    gov: ['department', 'roles'],
  },
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  async findAccount(ctx, id) {
    const claims = accounts[id];
    if (!claims) return undefined;
    return { accountId: id, async claims() { return { sub: id, ...claims }; } };
  },
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid profile email gov');
    await grant.save();
    return grant;
  },
});
provider.on('server_error', (ctx, err) => console.error('server_error', err));
const callback = provider.callback();
server.on('request', (req, res) => {
  const hook = req.url.match(/^\/__test\/accounts\/([^/?]+)$/);
  if (hook && req.method === 'PUT') {
    let body = '';
    req.on('data', (chunk) => { body += chunk; });
    req.on('end', () => {
      accounts[decodeURIComponent(hook[1])] = JSON.parse(body);
      res.writeHead(204).end();
    });
    return;
  }
  callback(req, res);
});
console.log(`READY ${issuer}`);
