// Prometheus metrics (prom-client). Each app has its own registry, so several instances in one process
// (the tests) do not share counters. Labels have bounded values: route templates, never raw paths.
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';

export type SignInOutcome = 'success' | 'failure' | 'throttled' | 'invalid' | 'error';

export class Metrics {
  readonly registry = new Registry();

  /** Every HTTP request, by method, route template and status code. */
  readonly httpRequests = new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests answered, by method, route template and status code',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });

  readonly httpDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Time to answer an HTTP request, by method, route template and status class',
    labelNames: ['method', 'route', 'status_class'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  /** One submission of a sign-in step (password, email_code, totp, trust, invite_email, create_password). */
  readonly signInSteps = new Counter({
    name: 'idp_sign_in_steps_total',
    help: 'Sign-in step submissions, by step (method) and outcome (success, failure, throttled, invalid, error)',
    labelNames: ['method', 'outcome'] as const,
    registers: [this.registry],
  });

  /** Finished sign-ins: success with the methods used (amr, e.g. "pwd+mca"), or aborted. */
  readonly signIns = new Counter({
    name: 'idp_sign_ins_total',
    help: 'Finished sign-ins, by outcome (success, aborted) and the methods used (amr values joined by +)',
    labelNames: ['outcome', 'method'] as const,
    registers: [this.registry],
  });

  readonly codesSent = new Counter({
    name: 'idp_codes_sent_total',
    help: 'Sign-in codes sent by email, by outcome (sent, failed, throttled)',
    labelNames: ['channel', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly throttled = new Counter({
    name: 'idp_rate_limited_total',
    help: 'Requests refused by a rate limit, by limit name',
    labelNames: ['limit'] as const,
    registers: [this.registry],
  });

  readonly passwordVerify = new Histogram({
    name: 'idp_password_verify_seconds',
    help: 'Time to verify a password (argon2id)',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [this.registry],
  });

  readonly databaseUnavailable = new Counter({
    name: 'idp_database_unavailable_total',
    help: 'Requests answered with 503 because the database could not be reached',
    registers: [this.registry],
  });

  constructor(options: { processMetrics?: boolean } = {}) {
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  async exposition(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
