import { expect } from 'chai';
import type { FlowState, LoginFlow } from '../src/login/flow.js';
import { nextStep, stepProgress } from '../src/login/policy.js';

const flow = (userId: string | null, state: Partial<FlowState>): LoginFlow => ({
  id: 'uid',
  user_id: userId,
  state: { amr: [], ...state },
  expires_at: new Date(Date.now() + 3600_000),
});

describe('sign-in step policy', () => {
  it('starts with identification (password page, which also offers Google)', () => {
    expect(nextStep(flow(null, {}))).to.deep.equal({ step: 'password' });
    // A user id without a passed identification method does not count.
    expect(nextStep(flow('u1', { amr: [] }))).to.deep.equal({ step: 'password' });
  });

  it('after Google: done at once without TOTP (no email code, no trust question), TOTP when enrolled', () => {
    expect(nextStep(flow('u1', { amr: ['fed'], factorsEvaluated: true }))).to.deep.equal({ done: true });
    expect(nextStep(flow('u1', { amr: ['fed'], factorsEvaluated: true, totpDevice: 'Pixel' }))).to.deep.equal({ step: 'totp' });
    expect(nextStep(flow('u1', { amr: ['fed', 'otp'], factorsEvaluated: true, totpDevice: 'Pixel' }))).to.deep.equal({ done: true });
  });

  it('after a password: TOTP, or the email code and the trust question, unless the browser is trusted', () => {
    expect(nextStep(flow('u1', { amr: ['pwd'], factorsEvaluated: true }))).to.deep.equal({ step: 'email_code' });
    expect(nextStep(flow('u1', { amr: ['pwd', 'mca'], factorsEvaluated: true }))).to.deep.equal({ step: 'trust' });
    expect(nextStep(flow('u1', { amr: ['pwd'], factorsEvaluated: true, trustedDeviceId: 'd1' }))).to.deep.equal({ done: true });
    expect(nextStep(flow('u1', { amr: ['pwd'], factorsEvaluated: true, totpDevice: '', trustedDeviceId: 'd1' }))).to.deep.equal({ step: 'totp' });
  });

  it('"Step N of M" follows the actual path: 3 steps with the email code, 2 with TOTP, 4 for an invitation', () => {
    // Before anyone is identified the path is unknown: the password page shows no step.
    expect(stepProgress(flow(null, {}), 'password')).to.equal(undefined);
    const emailCode = flow('u1', { amr: ['pwd'], factorsEvaluated: true });
    expect(stepProgress(emailCode, 'email_code')).to.deep.equal({ step: 2, total: 3 });
    expect(stepProgress(flow('u1', { amr: ['pwd', 'mca'], factorsEvaluated: true }), 'trust')).to.deep.equal({ step: 3, total: 3 });
    expect(stepProgress(flow('u1', { amr: ['pwd'], factorsEvaluated: true, totpDevice: 'Pixel' }), 'totp')).to.deep.equal({ step: 2, total: 2 });
    expect(stepProgress(flow('u1', { amr: ['fed'], factorsEvaluated: true, totpDevice: 'Pixel' }), 'totp')).to.deep.equal({ step: 2, total: 2 });
    const bypass = flow('u1', { amr: ['pwd'], factorsEvaluated: true, totpBypassUntil: new Date().toISOString() });
    expect(stepProgress(bypass, 'email_code')).to.deep.equal({ step: 2, total: 3 });
    expect(stepProgress(bypass, 'totp_renew')).to.deep.equal({ step: 3, total: 3 });
    const invitation = { invitation: { tokenId: 't', userId: 'u1' } };
    expect(stepProgress(flow(null, invitation), 'invite_email')).to.deep.equal({ step: 1, total: 4 });
    expect(stepProgress(flow('u1', invitation), 'create_password')).to.deep.equal({ step: 2, total: 4 });
    expect(stepProgress(flow('u1', { ...invitation, amr: ['pwd'] }), 'email_code')).to.deep.equal({ step: 3, total: 4 });
    expect(stepProgress(flow('u1', { ...invitation, amr: ['pwd', 'mca'] }), 'trust')).to.deep.equal({ step: 4, total: 4 });
  });
});
