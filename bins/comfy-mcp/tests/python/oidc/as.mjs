// A real OAuth authorization server for the OAuth tests (test_oauth.py):
// the `oidc-provider` package, with two confidential clients that get
// access tokens by the client credentials grant. The tokens are JWTs
// (ES256, RFC 9068) for one resource, the MCP server's URL.
//
//   node as.mjs PORT RESOURCE
//
// Clients: `reader` (scope comfyui:read) and `maker` (comfyui:read
// comfyui:generate), secret `<client>-secret-0123456789`. Prints
// `ISSUER <url>` once it listens on 127.0.0.1:PORT.
import Provider from 'oidc-provider';
import { generateKeyPairSync } from 'node:crypto';

const [port, resource] = [Number(process.argv[2]), process.argv[3]];
const issuer = `http://127.0.0.1:${port}`;
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
const client = (id, scope) => ({
  client_id: id,
  client_secret: `${id}-secret-0123456789`,
  grant_types: ['client_credentials'],
  redirect_uris: [],
  response_types: [],
  // Only an EC key is configured, so ID tokens (never issued here) too.
  id_token_signed_response_alg: 'ES256',
  scope,
});

const provider = new Provider(issuer, {
  clients: [client('reader', 'comfyui:read'), client('maker', 'comfyui:read comfyui:generate')],
  jwks: { keys: [{ ...ec, kid: 'test-ec-1', use: 'sig', alg: 'ES256' }] },
  scopes: ['comfyui:read', 'comfyui:generate'],
  ttl: { ClientCredentials: 300 },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, indicator) => {
        if (indicator !== resource) throw new Error('unknown resource');
        return {
          scope: 'comfyui:read comfyui:generate',
          audience: resource,
          accessTokenFormat: 'jwt',
          accessTokenTTL: 300,
          jwt: { sign: { alg: 'ES256' } },
        };
      },
    },
  },
});
provider.listen(port, '127.0.0.1', () => console.log(`ISSUER ${issuer}`));
