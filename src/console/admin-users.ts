// Customer admins manage the users of their own customer: list, create (with invitation), resend the
// invitation, disable/enable, turn off 2FA. Another customer's user is answered exactly like a user that
// does not exist (the tenant wall).
import Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import { sendInvitation, setUserEnabled } from '../accounts/lifecycle.js';
import { disableTotp, suspendTotpTemporarily } from '../accounts/two-factor.js';
import { createUser, findUserById, type Role, type UserWithCustomer } from '../accounts/users.js';
import { DomainError, describeError } from '../errors.js';
import { formField } from '../http/form.js';
import { pageLocale, render } from '../http/render.js';
import { translator, type MessageKey } from '../i18n/index.js';
import { MailDeliveryError } from '../mail/mailer.js';
import { audit } from '../security/audit.js';
import type { Services } from '../services.js';
import { currentConsole, ensureRecentSignIn } from './session.js';

interface UserRow {
  id: string;
  name: string;
  email: string;
  role: Role;
  status: string;
  totp: string | null;
}

export function adminUserRoutes(services: Services, signedIn: Middleware): Router {
  const { db } = services;
  const router = new Router();
  const t = (ctx: Context) => translator(pageLocale(ctx));
  const request = (ctx: Context) => ({ ip: ctx.ip, userAgent: ctx.get('user-agent') });

  /** Only admins, and sensitive changes only with a recent sign-in. */
  const admin: Middleware = async (ctx, next) => {
    if (currentConsole(ctx).user.role !== 'admin') throw new DomainError('forbidden', 'console.error.not_admin', 403);
    if (ctx.method === 'POST' && !ensureRecentSignIn(ctx, services.config.issuer, '/account/users')) return;
    await next();
  };

  async function page(ctx: Context, extra: { notice?: string; error?: string; errorField?: string; form?: Record<string, string> } = {}, status = 200) {
    const me = currentConsole(ctx).user;
    const users = await db('users')
      .leftJoin('totp_credentials', function joinActive() {
        this.on('totp_credentials.user_id', '=', 'users.id').andOnVal('totp_credentials.status', '=', 'active');
      })
      .where('users.customer_id', me.customer_id)
      .orderBy('users.email')
      .select<UserRow[]>('users.id', 'users.name', 'users.email', 'users.role', 'users.status', 'totp_credentials.user_id as totp');
    await render(ctx, 'console/users', { users, me, notice: extra.notice, error: extra.error, errorField: extra.errorField, form: extra.form ?? {} }, status);
  }

  /** The target user, if it belongs to the admin's own customer. */
  async function target(ctx: Context): Promise<UserWithCustomer> {
    const user = await findUserById(db, ctx.params.id!);
    if (!user || user.customer_id !== currentConsole(ctx).user.customer_id) throw new DomainError('not_found', 'console.error.not_found', 404);
    return user;
  }

  router.get('/account/users', signedIn, admin, async (ctx) => page(ctx));

  router.post('/account/users', signedIn, admin, async (ctx) => {
    const me = currentConsole(ctx).user;
    const form = {
      name: (formField(ctx, 'name') ?? '').slice(0, 200),
      email: (formField(ctx, 'email') ?? '').slice(0, 254),
      role: formField(ctx, 'role') ?? 'user',
      google_email: (formField(ctx, 'google_email') ?? '').trim().slice(0, 254),
    };
    let created: UserWithCustomer;
    try {
      const { user } = await createUser(db, services.hasher, {
        customerNumber: me.customer_number,
        email: form.email,
        name: form.name,
        role: form.role as Role,
        googleEmail: form.google_email || undefined,
      });
      await audit(db, { type: 'user.created', userId: user.id, customerId: user.customer_id, ...request(ctx), details: { via: 'admin', admin_id: me.id, role: user.role } });
      created = (await findUserById(db, user.id))!;
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
      const fields: Record<string, string> = { invalid_email: 'email', email_taken: 'email', invalid_name: 'name', invalid_role: 'role', invalid_google_email: 'google_email', google_email_taken: 'google_email' };
      await page(ctx, { error: describeError(error, t(ctx)), errorField: fields[error.code], form }, error.status);
      return;
    }
    try {
      await sendInvitation(services, created, { name: me.name }, request(ctx));
    } catch (error) {
      if (!(error instanceof MailDeliveryError)) throw error;
      await page(ctx, { error: t(ctx)('admin.invite_failed', { email: created.email }) }, 503);
      return;
    }
    await page(ctx, { notice: t(ctx)('admin.created', { email: created.email }) });
  });

  router.post('/account/users/:id/resend', signedIn, admin, async (ctx) => {
    const user = await target(ctx);
    try {
      await sendInvitation(services, user, { name: currentConsole(ctx).user.name }, request(ctx));
    } catch (error) {
      if (error instanceof MailDeliveryError) return page(ctx, { error: t(ctx)('admin.invite_failed', { email: user.email }) }, 503);
      throw error;
    }
    await page(ctx, { notice: t(ctx)('admin.resent', { email: user.email }) });
  });

  for (const [action, enabled] of [['disable', false], ['enable', true]] as const) {
    router.post(`/account/users/:id/${action}`, signedIn, admin, async (ctx) => {
      const me = currentConsole(ctx).user;
      const user = await target(ctx);
      if (user.id === me.id) return page(ctx, { error: t(ctx)('admin.error.self') }, 400);
      await setUserEnabled(services, user, enabled, { kind: 'admin', id: me.id }, request(ctx));
      await page(ctx, { notice: t(ctx)(enabled ? 'admin.enabled' : 'admin.disabled', { email: user.email }) });
    });
  }

  /** "Turn off 2FA": for a time (default 24 hours, at most 7 days: the old app is needed again after), or for good. */
  router.post('/account/users/:id/disable-2fa', signedIn, admin, async (ctx) => {
    const me = currentConsole(ctx).user;
    const user = await target(ctx);
    const actor = { kind: 'admin' as const, userId: me.id, email: me.email };
    const choice = formField(ctx, 'for') ?? '24h';
    if (choice === 'permanent') {
      await disableTotp(services, user, actor, request(ctx));
      return page(ctx, { notice: t(ctx)('console.users.disabled_2fa', { name: user.name }) });
    }
    const hours = { '24h': 24, '72h': 72, '168h': 168 }[choice];
    if (!hours) throw new DomainError('invalid_duration', 'error.bad_request', 400);
    const until = await suspendTotpTemporarily(services, user, actor, hours, request(ctx));
    await page(ctx, { notice: t(ctx)('admin.bypass.done', { name: user.name, until: `${until.toISOString().slice(0, 16).replace('T', ' ')} UTC` }) });
  });

  return router;
}
