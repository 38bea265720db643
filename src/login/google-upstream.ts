// Sign in with Google, the protocol side: an OpenID Connect authorization code flow with PKCE, state
// and nonce against GOOGLE_ISSUER (Google, or any issuer in its place), through openid-client.
//
// Binding: `state` is `<interaction uid>.<random>`. Only its keyed hash is kept in the sign-in flow;
// the PKCE verifier and the nonce are derived from it with the server key, so nothing usable is
// stored and the callback can run on any instance. The ID token is checked for issuer, audience,
// expiry, nonce and (non-repudiation checks) its signature against the issuer's JWKS.
import * as oidc from 'openid-client';
import type { GoogleIdentity } from '../accounts/google.js';
import type { Secrets } from '../security/crypto.js';

/** The one redirect URI registered at Google; it forwards to the interaction's own callback. */
export const GOOGLE_CALLBACK_PATH = '/interaction/callback/google';

/** Discovery metadata is refreshed after this long (the JWKS is refreshed by openid-client itself). */
const DISCOVERY_MAX_AGE_MS = 24 * 60 * 60 * 1000;

export type UpstreamFailure =
  /** The issuer could not be reached, timed out or answered with a server error. */
  | 'unavailable'
  /** The user cancelled at Google (access_denied). */
  | 'cancelled'
  /** Google answered with an error (an error response, or the token endpoint refused the code). */
  | 'rejected'
  /** The answer did not pass validation (ID token signature, issuer, audience, nonce, expiry, iss). */
  | 'invalid';

export class UpstreamError extends Error {
  constructor(
    readonly kind: UpstreamFailure,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'UpstreamError';
  }
}

export interface UpstreamSettings {
  clientId: string;
  clientSecret: string;
  issuer: string;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** http:// is allowed only for an issuer on this machine (tests, local development). */
export function isLoopbackHttp(issuer: string): boolean {
  const url = new URL(issuer);
  return url.protocol === 'http:' && LOOPBACK.has(url.hostname);
}

const STATE_PATTERN = /^([\w-]{1,64})\.([\w-]{43})$/;

/** The interaction a `state` value belongs to, or undefined when it is not one of ours. */
export function interactionOfState(state: unknown): string | undefined {
  return typeof state === 'string' ? STATE_PATTERN.exec(state)?.[1] : undefined;
}

export class GoogleUpstream {
  private discovered: { config: Promise<oidc.Configuration>; at: number } | undefined;

  constructor(
    private readonly settings: UpstreamSettings,
    /** Our own issuer URL; the redirect URI hangs off it. */
    private readonly ourIssuer: string,
    private readonly secrets: Secrets,
    private readonly timeoutSeconds = 10,
  ) {}

  get redirectUri(): string {
    return `${this.ourIssuer}${GOOGLE_CALLBACK_PATH}`;
  }

  /** Discovery once per process; a failed discovery is not cached, so the next sign-in tries again. */
  private configuration(): Promise<oidc.Configuration> {
    if (this.discovered && Date.now() - this.discovered.at < DISCOVERY_MAX_AGE_MS) return this.discovered.config;
    const { issuer, clientId, clientSecret } = this.settings;
    const execute = [oidc.enableNonRepudiationChecks, ...(isLoopbackHttp(issuer) ? [oidc.allowInsecureRequests] : [])];
    const config = oidc
      .discovery(new URL(issuer), clientId, clientSecret, oidc.ClientSecretPost(clientSecret), { execute, timeout: this.timeoutSeconds })
      .catch((error: unknown) => {
        if (this.discovered?.config === config) this.discovered = undefined;
        throw toUpstreamError(error);
      });
    this.discovered = { config, at: Date.now() };
    return config;
  }

  /** PKCE verifier and nonce for a state value (HMAC with the server key; 43 base64url characters each). */
  private derive(state: string): { verifier: string; nonce: string } {
    return { verifier: this.secrets.keyedHash(state, 'google/pkce-verifier'), nonce: this.secrets.keyedHash(state, 'google/nonce') };
  }

  /** What the sign-in flow keeps to recognise the callback. */
  stateHash(state: string): string {
    return this.secrets.keyedHash(state, 'google/state');
  }

  /** Starts an attempt for an interaction: the URL to send the browser to and the hash to remember. */
  async start(interactionUid: string): Promise<{ url: string; stateHash: string }> {
    const config = await this.configuration();
    const state = `${interactionUid}.${oidc.randomState()}`;
    const { verifier, nonce } = this.derive(state);
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: this.redirectUri,
      scope: 'openid email',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    return { url: url.href, stateHash: this.stateHash(state) };
  }

  /**
   * Completes an attempt with the parameters Google sent to the redirect URI: checks the response
   * (state, iss), redeems the code with the PKCE verifier and validates the ID token.
   */
  async finish(params: URLSearchParams, state: string): Promise<GoogleIdentity> {
    const config = await this.configuration();
    const current = new URL(this.redirectUri);
    current.search = params.toString();
    const { verifier, nonce } = this.derive(state);
    let claims: oidc.IDToken | undefined;
    try {
      const tokens = await oidc.authorizationCodeGrant(config, current, {
        pkceCodeVerifier: verifier,
        expectedState: state,
        expectedNonce: nonce,
        idTokenExpected: true,
      });
      claims = tokens.claims();
    } catch (error) {
      throw toUpstreamError(error);
    }
    if (!claims || typeof claims.sub !== 'string') throw new UpstreamError('invalid', 'no ID token claims');
    return {
      subject: claims.sub,
      email: typeof claims.email === 'string' ? claims.email : undefined,
      // Only a JSON true counts; a string "true" or a missing claim does not.
      emailVerified: claims.email_verified === true,
      hostedDomain: typeof claims.hd === 'string' ? claims.hd : undefined,
    };
  }
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT']);

function isNetworkFailure(error: unknown): boolean {
  const e = error as { name?: string; message?: string; code?: string; cause?: { code?: string; name?: string } } | undefined;
  if (!e) return false;
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return true;
  if (e.code && NETWORK_CODES.has(e.code)) return true;
  if (e.cause && (NETWORK_CODES.has(e.cause.code ?? '') || e.cause.name === 'TimeoutError')) return true;
  return e instanceof TypeError && e.message === 'fetch failed';
}

/** Sorts openid-client's errors into what the user is told. */
export function toUpstreamError(error: unknown): UpstreamError {
  if (error instanceof UpstreamError) return error;
  const cause = (error as { cause?: unknown }).cause;
  const message =
    error instanceof Error ? `${error.message}${cause instanceof Error && cause.message !== error.message ? `: ${cause.message}` : ''}` : String(error);
  if (error instanceof oidc.AuthorizationResponseError) {
    return new UpstreamError(error.error === 'access_denied' ? 'cancelled' : 'rejected', `${error.error}: ${error.error_description ?? ''}`, { cause: error });
  }
  if (error instanceof oidc.ResponseBodyError) {
    return new UpstreamError(error.status >= 500 ? 'unavailable' : 'rejected', `${error.error}: ${error.error_description ?? ''}`, { cause: error });
  }
  if (isNetworkFailure(error)) return new UpstreamError('unavailable', message, { cause: error });
  const code = (error as { code?: string }).code;
  // A non-JSON or non-2xx answer (a proxy's error page, a 5xx) means the issuer is not working.
  if (code === 'OAUTH_RESPONSE_IS_NOT_CONFORM' || code === 'OAUTH_RESPONSE_IS_NOT_JSON') {
    const status = (error as { cause?: { status?: number } }).cause?.status;
    if (status === undefined || status >= 500) return new UpstreamError('unavailable', message, { cause: error });
  }
  return new UpstreamError('invalid', message, { cause: error });
}
