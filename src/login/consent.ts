// Step 4 of DESIGN §2: consent. First-party clients skip it (what they ask for is granted); any other
// client gets a page that lists, in plain words, what it asks for, with "Allow" and "Deny". What the user
// allows is remembered per user and client (consents.ts) until revoked.
import Router from '@koa/router';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import { findUserById } from '../accounts/users.js';
import { pageLocale, render, setPageLocale } from '../http/render.js';
import { type MessageKey, type Translate, translator } from '../i18n/index.js';
import { isFirstPartyClient } from '../oidc/clients.js';
import { rememberConsent } from '../oidc/consents.js';
import { OIDC_SCOPES, SCOPE_CLAIMS } from '../oidc/provider.js';
import { findResourceServer } from '../oidc/resources.js';
import { audit } from '../security/audit.js';
import type { Services } from '../services.js';

type Details = Awaited<ReturnType<Provider['interactionDetails']>>;

interface Missing {
  missingOIDCScope?: string[];
  missingOIDCClaims?: string[];
  missingResourceScopes?: Record<string, string[]>;
}

const CLAIM_NAMES = new Set<string>(Object.values(SCOPE_CLAIMS).flat());

function missingOf(details: Details): Missing {
  return details.prompt.details as Missing;
}

/** What the page lists: the scopes, claims and API scopes asked for and not yet granted. */
async function describe(services: Services, details: Details, t: Translate): Promise<{ items: string[]; claims: string[]; resources: string[] }> {
  const missing = missingOf(details);
  // Nothing missing (prompt=consent, or a native app, which is always asked): list all that was requested.
  const requested = String(details.params.scope ?? '').split(' ');
  const scopes = missing.missingOIDCScope ?? (missing.missingOIDCClaims || missing.missingResourceScopes ? [] : requested);
  const items = OIDC_SCOPES.filter((s) => scopes.includes(s)).map((s) => t(`consent.scope.${s}` as MessageKey));
  const claims = (missing.missingOIDCClaims ?? []).filter((c) => CLAIM_NAMES.has(c)).map((c) => t(`consent.claim.${c}` as MessageKey));
  const resources: string[] = [];
  for (const [indicator, list] of Object.entries(missing.missingResourceScopes ?? {})) {
    const server = await findResourceServer(services.db, indicator);
    resources.push(t('consent.resource', { api: server?.name ?? new URL(indicator).host, scopes: list.join(', ') }));
  }
  return { items, claims, resources };
}

function redirectHost(details: Details): string | undefined {
  try {
    const uri = new URL(String(details.params.redirect_uri));
    return uri.protocol === 'https:' || uri.protocol === 'http:' ? uri.host : uri.protocol.slice(0, -1);
  } catch {
    return undefined;
  }
}

/** Adds what the prompt found missing to the grant and finishes the consent prompt. */
async function grantAndFinish(services: Services, provider: Provider, ctx: Context, details: Details, remember: boolean): Promise<void> {
  const { params, session, grantId } = details;
  const accountId = session!.accountId;
  const clientId = String(params.client_id);
  const grant = grantId ? await provider.Grant.find(grantId) : new provider.Grant({ accountId, clientId });
  if (!grant) ctx.throw(400, 'grant not found');
  const missing = missingOf(details);
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) grant.addResourceScope(indicator, scopes.join(' '));
  const savedId = await grant.save();
  if (remember) {
    await rememberConsent(services.db, accountId, clientId, {
      scopes: missing.missingOIDCScope ?? [],
      claims: missing.missingOIDCClaims ?? [],
      resource_scopes: missing.missingResourceScopes ?? {},
    });
    await audit(services.db, {
      type: 'consent.granted',
      userId: accountId,
      ip: ctx.ip,
      userAgent: ctx.get('user-agent'),
      details: { client_id: clientId, scopes: missing.missingOIDCScope ?? [], claims: missing.missingOIDCClaims ?? [], resources: missing.missingResourceScopes ?? {} },
    });
  }
  ctx.respond = false;
  await provider.interactionFinished(ctx.req, ctx.res, { consent: { grantId: savedId } }, { mergeWithLastSubmission: true });
}

/**
 * The consent prompt (GET /interaction/:uid with prompt "consent", called from routes.ts): first-party
 * clients get what they asked for at once (usually loadExistingGrant in provider.ts has granted it already
 * and the prompt does not come up; it still does for prompt=consent and native apps); for the others the
 * consent page is shown.
 */
export async function showConsent(services: Services, provider: Provider, ctx: Context, details: Details, error?: { status: number; message: string }): Promise<void> {
  const clientId = String(details.params.client_id);
  if (!details.session?.accountId) ctx.throw(400, 'no signed-in user');
  if (await isFirstPartyClient(services.db, services.secrets, clientId)) return grantAndFinish(services, provider, ctx, details, false);

  const t = translator(pageLocale(ctx));
  const [client, user] = await Promise.all([provider.Client.find(clientId), findUserById(services.db, details.session.accountId)]);
  const { items, claims, resources } = await describe(services, details, t);
  const metadata: Record<string, unknown> = client?.metadata() ?? {};
  const link = (name: string) => (typeof metadata[name] === 'string' ? (metadata[name] as string) : undefined);
  await render(
    ctx,
    'consent',
    {
      action: `/interaction/${details.uid}/consent`,
      clientName: client?.clientName ?? undefined,
      clientLinks: { policyUri: link('policy_uri'), tosUri: link('tos_uri') },
      items,
      claims,
      resources,
      user: user?.email,
      returnHost: redirectHost(details),
      error: error?.message,
    },
    error?.status ?? 200,
  );
}

export function consentRoutes(services: Services, provider: Provider): Router {
  const router = new Router();

  router.post('/interaction/:uid/consent', async (ctx) => {
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    if (details.uid !== ctx.params.uid) ctx.throw(400, 'interaction mismatch');
    const signedIn = details.session?.accountId ? await findUserById(services.db, details.session.accountId) : undefined;
    setPageLocale(ctx, { uiLocales: typeof details.params.ui_locales === 'string' ? details.params.ui_locales : undefined, saved: signedIn?.locale });
    // Not at the consent prompt (back button, second tab): show whatever is due now.
    if (details.prompt.name !== 'consent') {
      ctx.status = 303;
      ctx.redirect(`/interaction/${details.uid}`);
      return;
    }
    const accountId = details.session?.accountId;
    if (!accountId) ctx.throw(400, 'no signed-in user');
    const clientId = String(details.params.client_id);
    const decision = (ctx.request.body as Record<string, unknown> | undefined)?.decision;

    if (decision === 'deny') {
      await audit(services.db, { type: 'consent.denied', userId: accountId, ip: ctx.ip, userAgent: ctx.get('user-agent'), details: { client_id: clientId } });
      ctx.respond = false;
      await provider.interactionFinished(
        ctx.req,
        ctx.res,
        { error: 'access_denied', error_description: 'End-User denied consent' },
        { mergeWithLastSubmission: false },
      );
      return;
    }
    if (decision !== 'allow') {
      return showConsent(services, provider, ctx, details, { status: 400, message: translator(pageLocale(ctx))('consent.error.choose') });
    }
    const firstParty = await isFirstPartyClient(services.db, services.secrets, clientId);
    await grantAndFinish(services, provider, ctx, details, !firstParty);
  });

  return router;
}
