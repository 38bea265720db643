// Users: people who sign in. The id is the OIDC subject. Email addresses are unique case-insensitively.
import { z } from 'zod';
import { type Db, fastQuery } from '../db/index.js';
import { DomainError, isUniqueViolation } from '../errors.js';
import { findCustomerByNumber, parseOrThrow, type Customer } from './customers.js';
import { assertAcceptablePassword } from './password-policy.js';
import type { PasswordHasher } from './passwords.js';

export type Role = 'admin' | 'user';
export type UserStatus = 'active' | 'invited' | 'disabled';

export interface User {
  id: string;
  customer_id: string;
  email: string;
  name: string;
  role: Role;
  is_owner: boolean;
  status: UserStatus;
  email_verified: boolean;
  /** The language the user chose on the profile page; null until then. */
  locale: string | null;
  password_hash: string | null;
  google_email: string | null;
  google_subject: string | null;
  created_at: Date;
  updated_at: Date;
}

export interface UserWithCustomer extends User {
  customer_number: string;
}

export const emailSchema = z
  .string()
  .trim()
  .max(254, 'user.error.email_too_long')
  .pipe(z.email('user.error.email_invalid'))
  .transform((e) => e.toLowerCase());

export interface CreateUserInput {
  customerNumber: string;
  email: string;
  name: string;
  role?: Role;
  owner?: boolean;
  googleEmail?: string | undefined;
  password?: string | undefined;
}

export async function createUser(db: Db, hasher: PasswordHasher, input: CreateUserInput): Promise<{ user: User; customer: Customer }> {
  const email = parseOrThrow(emailSchema, input.email, 'invalid_email');
  const name = parseOrThrow(z.string().trim().min(1, 'user.error.name_required').max(200, 'user.error.name_too_long'), input.name, 'invalid_name');
  const role = parseOrThrow(z.enum(['admin', 'user'], 'user.error.role'), input.role ?? 'user', 'invalid_role');
  const googleEmail = input.googleEmail === undefined ? null : parseOrThrow(emailSchema, input.googleEmail, 'invalid_google_email');
  if (input.owner && role !== 'admin') throw new DomainError('invalid_role', 'user.error.owner_role');
  if (input.password !== undefined) assertAcceptablePassword(input.password, { email, name });

  const customer = await findCustomerByNumber(db, input.customerNumber);
  if (!customer) throw new DomainError('unknown_customer', 'customer.error.unknown', 404, { customer_number: input.customerNumber });
  const passwordHash = input.password === undefined ? null : await hasher.hash(input.password);
  try {
    const [user] = await db<User>('users')
      .insert({
        customer_id: customer.id,
        email,
        name,
        role,
        is_owner: Boolean(input.owner),
        google_email: googleEmail,
        password_hash: passwordHash,
        // A user created with a password by an operator is active at once; otherwise the invitation activates it.
        status: passwordHash ? 'active' : 'invited',
        email_verified: false,
      })
      .returning('*');
    return { user: user!, customer };
  } catch (error) {
    if (isUniqueViolation(error, 'users_email_unique')) throw new DomainError('email_taken', 'user.error.email_taken', 409, { email });
    if (isUniqueViolation(error, 'users_google_email_unique')) {
      throw new DomainError('google_email_taken', 'user.error.google_email_taken', 409, { google_email: googleEmail ?? '' });
    }
    if (isUniqueViolation(error, 'users_one_owner_per_customer')) {
      throw new DomainError('owner_exists', 'customer.error.owner_exists', 409, { customer_number: customer.customer_number });
    }
    throw error;
  }
}

function withCustomer(db: Db) {
  return db<UserWithCustomer>('users')
    .join('customers', 'customers.id', 'users.customer_id')
    .select('users.*', 'customers.customer_number');
}

const USER_COLUMNS = `users.id, users.customer_id, users.email, users.name, users.role, users.is_owner, users.status, users.email_verified,
  users.locale, users.password_hash, users.google_email, users.google_subject, users.created_at, users.updated_at, customers.customer_number`;
const uuidSchema = z.uuid();

/** By id (the OIDC subject): every token request and sign-in looks the account up, so a prepared statement. */
export async function findUserById(db: Db, id: string): Promise<UserWithCustomer | undefined> {
  if (!uuidSchema.safeParse(id).success) return undefined;
  const [user] = await fastQuery<UserWithCustomer>(
    db,
    'users_by_id',
    `SELECT ${USER_COLUMNS} FROM users JOIN customers ON customers.id = users.customer_id WHERE users.id = $1`,
    [id],
  );
  return user;
}

export async function findUserByEmail(db: Db, email: string): Promise<UserWithCustomer | undefined> {
  const [user] = await fastQuery<UserWithCustomer>(
    db,
    'users_by_email',
    `SELECT ${USER_COLUMNS} FROM users JOIN customers ON customers.id = users.customer_id WHERE lower(users.email) = $1`,
    [email.trim().toLowerCase()],
  );
  return user;
}

/**
 * Resolves what a person typed into "Email address or customer number": an address finds that user,
 * a customer number finds the customer's owner.
 */
export async function findUserByLogin(db: Db, identifier: string): Promise<UserWithCustomer | undefined> {
  const value = identifier.trim();
  if (value.includes('@')) return findUserByEmail(db, value);
  if (!/^\d{4,12}$/.test(value)) return undefined;
  return withCustomer(db).where({ 'customers.customer_number': value, 'users.is_owner': true }).first();
}

export async function setPasswordHash(db: Db, userId: string, passwordHash: string): Promise<void> {
  await db('users').where({ id: userId }).update({ password_hash: passwordHash, updated_at: db.fn.now() });
}

/** A correct email code proves the user controls the mailbox. */
export async function markEmailVerified(db: Db, userId: string): Promise<void> {
  await db('users').where({ id: userId, email_verified: false }).update({ email_verified: true, updated_at: db.fn.now() });
}
