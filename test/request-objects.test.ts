import { expect } from 'chai';
import { UnsecuredJWT } from 'jose';
import { fetchRequestObject, isSpecialUseAddress, RequestObjectError } from '../src/oidc/request-objects.js';
import { Browser } from './support/browser.js';
import {
  authorize,
  authRequest,
  dynamicClient,
  forgetInitialAccessToken,
  makeTester,
  startRpServer,
  staticClient,
  useTester,
  type AuthResponse,
  type RpServer,
  type SuiteClient,
} from './support/conformance.js';
import { resetData, testEnv } from './support/env.js';

function errorOf(response: AuthResponse): string | null {
  if (response.kind === 'page') throw new Error(`an error page instead of a response: ${response.page.html.slice(0, 200)}`);
  return response.params.get('error');
}

describe('authorization requests by POST, request_uri and unsigned request objects (request-objects.ts)', () => {
  let client: SuiteClient;
  let rp: RpServer;

  before(async () => {
    await resetData();
    forgetInitialAccessToken();
    client = await staticClient();
    useTester(await makeTester('forms@example.com', client));
    rp = await startRpServer();
  });

  after(async () => {
    useTester(undefined);
    await rp.close();
  });

  it('a POST that is not a form, or too large, gets a clear error page', async () => {
    const json = await fetch(`${testEnv().url}/auth`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(json.status).to.equal(400);
    expect(await json.text()).to.include('application/x-www-form-urlencoded');
    const huge = await fetch(`${testEnv().url}/auth`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_id: client.clientId, request: 'x'.repeat(20_000) }),
    });
    expect(huge.status).to.equal(413);
    expect(await huge.text()).to.include('request_uri');
  });

  it('an unsigned request object that contradicts the query, or has expired, is refused with invalid_request_object', async () => {
    const browser = new Browser();
    for (const claims of [{ client_id: 'someone-else' }, { response_type: 'id_token' }, { exp: Math.floor(Date.now() / 1000) - 60 }, { aud: 'https://other.example' }]) {
      const request = authRequest(client);
      request.params.set('request', new UnsecuredJWT({ ...Object.fromEntries(request.params), ...claims }).encode());
      expect(errorOf(await authorize(browser, request, { signIn: false })), JSON.stringify(claims)).to.equal('invalid_request_object');
    }
  });

  it('a client registered for signed request objects cannot send an unsigned one', async () => {
    const signedOnly = await dynamicClient({ metadata: { request_object_signing_alg: 'RS256' } });
    const request = authRequest(signedOnly);
    request.params.set('request', new UnsecuredJWT({ ...Object.fromEntries(request.params) }).encode());
    expect(errorOf(await authorize(new Browser(), request, { signIn: false }))).to.equal('invalid_request_object');
  });

  it('a request_uri that cannot be fetched gives invalid_request_uri; request_uris must be https outside development', async () => {
    const path = '/request/missing.jwt';
    const withUri = await dynamicClient({ metadata: { request_uris: [`${rp.url}${path}`] } });
    const request = authRequest(withUri);
    request.params.set('request_uri', `${rp.url}${path}`);
    expect(errorOf(await authorize(new Browser(), request, { signIn: false }))).to.equal('invalid_request_uri');
    expect(rp.hits(path)).to.equal(1);
  });

  it('in production the request_uri fetch refuses http and special-use addresses', async () => {
    for (const uri of ['http://example.com/r.jwt', 'https://127.0.0.1/r.jwt', 'https://[::1]/r.jwt', 'https://10.0.0.8/r.jwt', 'https://[::ffff:127.0.0.1]/r.jwt', 'https://localhost/r.jwt']) {
      const error = await fetchRequestObject(uri, { production: true }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error, uri).to.be.instanceOf(RequestObjectError);
    }
    expect(['10.1.2.3', '127.0.0.1', '169.254.169.254', '::1', 'fd00::1', '::ffff:127.0.0.1', '::ffff:7f00:1', '192.168.1.1'].every(isSpecialUseAddress)).to.equal(true);
    expect(['8.8.8.8', '2001:4860:4860::8888', '93.184.216.34', '::ffff:808:808'].some(isSpecialUseAddress)).to.equal(false);
  });
});
