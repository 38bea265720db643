// Token, code and cookie values are bearer secrets, and oidc-provider uses them as the ids of its records
// (repeating them as `jti` in the payload). For those models the row's id is a keyed hash of the value
// and the jti is kept encrypted, so a copy of oidc_payloads (a backup, a read-only SQL injection) holds
// no token, code or session cookie anyone could present (DESIGN §4: tokens as keyed hashes).
import type { AdapterPayload } from 'oidc-provider';
import { type Db, fastQuery } from '../db/index.js';
import type { Secrets } from '../security/crypto.js';

/** Models whose id is what a client, browser or user presents. Grants and replay records are not secrets. */
export const SECRET_ID_MODELS: ReadonlySet<string> = new Set([
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'ClientCredentials',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
  'InitialAccessToken',
  'RegistrationAccessToken',
  'PushedAuthorizationRequest',
  'Session',
  'Interaction',
]);

/** Marks a hashed id (so rows written before hashing are told apart and re-keyed). */
const HASHED = 'h1:';

export function storedId(secrets: Secrets, model: string, id: string): string {
  return SECRET_ID_MODELS.has(model) ? `${HASHED}${secrets.keyedHash(id, `oidc-id:${model}`)}` : id;
}

/** Records found by something other than their id (findByUid, findByUserCode) keep the id, encrypted. */
const FOUND_BY_OTHER_KEYS: ReadonlySet<string> = new Set(['Session', 'DeviceCode']);

/**
 * The payload as stored under `id`. For secret models the jti (oidc-provider's copy of the id) is left
 * out — `_jti: 1` says to put the id back on reading — or, for records also found by another key, kept
 * encrypted under `_jti`. An interaction's copy of the session cookie (`session.cookie`, when a signed-in
 * user is asked again) is encrypted too.
 */
export function sealPayload(secrets: Secrets, model: string, id: string, payload: AdapterPayload): AdapterPayload {
  if (!SECRET_ID_MODELS.has(model)) return payload;
  let sealed: AdapterPayload = payload;
  if (typeof sealed.jti === 'string') {
    const { jti, ...rest } = sealed;
    const keepEncrypted = jti !== id || FOUND_BY_OTHER_KEYS.has(model);
    sealed = { ...rest, _jti: keepEncrypted ? secrets.encrypt(jti, `oidc-jti:${model}`) : 1 };
  }
  const session = sealed.session as { cookie?: unknown } | undefined;
  if (model === 'Interaction' && typeof session?.cookie === 'string') {
    const { cookie, ...rest } = session;
    sealed = { ...sealed, session: { ...rest, _cookie: secrets.encrypt(cookie, 'oidc-jti:Session') } as AdapterPayload['session'] };
  }
  return sealed;
}

/** The payload as oidc-provider wrote it; `id` when it was found by its id. */
export function openPayload(secrets: Secrets, model: string, stored: AdapterPayload, id?: string): AdapterPayload {
  let opened: AdapterPayload = stored;
  if (opened._jti !== undefined) {
    const { _jti: jti, ...rest } = opened;
    if (typeof jti === 'string') opened = { ...rest, jti: secrets.decrypt(jti, `oidc-jti:${model}`) };
    else if (id !== undefined) opened = { ...rest, jti: id };
    else opened = rest;
  }
  const session = opened.session as { _cookie?: unknown } | undefined;
  if (typeof session?._cookie === 'string') {
    const { _cookie: cookie, ...rest } = session;
    opened = { ...opened, session: { ...rest, cookie: secrets.decrypt(cookie, 'oidc-jti:Session') } };
  }
  return opened;
}

/**
 * Rows written before ids were hashed (clear id, clear jti) get the stored form, so sessions and tokens
 * issued before an upgrade keep working. Run at start-up; idempotent, and safe with several instances.
 */
export async function rekeyLegacyPayloads(db: Db, secrets: Secrets): Promise<number> {
  const rows = await fastQuery<{ model: string; id: string; payload: AdapterPayload }>(
    db,
    'oidc_payloads_legacy',
    `SELECT model, id, payload FROM oidc_payloads WHERE model = ANY($1) AND id NOT LIKE '${HASHED}%'`,
    [[...SECRET_ID_MODELS]],
  );
  for (const row of rows) {
    await fastQuery(db, 'oidc_payloads_rekey', 'UPDATE oidc_payloads SET id = $1, payload = $2 WHERE model = $3 AND id = $4', [
      storedId(secrets, row.model, row.id),
      JSON.stringify(sealPayload(secrets, row.model, row.id, row.payload)),
      row.model,
      row.id,
    ]);
  }
  return rows.length;
}
