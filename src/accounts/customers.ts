// Customers: a company account identified by its customer number, with one owner and admins.
import { randomInt } from 'node:crypto';
import { z } from 'zod';
import type { Db } from '../db/index.js';
import { DomainError, isUniqueViolation } from '../errors.js';

export interface Customer {
  id: string;
  customer_number: string;
  name: string;
  created_at: Date;
}

export const customerNumberSchema = z.string().regex(/^\d{4,12}$/, 'customer.error.number_format');
const nameSchema = z.string().trim().min(1, 'customer.error.name_required').max(200, 'customer.error.name_too_long');

export async function createCustomer(db: Db, input: { name: string; customerNumber?: string | undefined }): Promise<Customer> {
  const name = parseOrThrow(nameSchema, input.name, 'invalid_name');
  const given = input.customerNumber === undefined ? undefined : parseOrThrow(customerNumberSchema, input.customerNumber, 'invalid_customer_number');
  // Generated numbers are 7 digits from a CSPRNG; retry on the rare collision.
  for (let attempt = 0; attempt < 5; attempt += 1) {
    const customerNumber = given ?? String(randomInt(1_000_000, 10_000_000));
    try {
      const [row] = await db<Customer>('customers').insert({ name, customer_number: customerNumber }).returning('*');
      return row!;
    } catch (error) {
      if (!isUniqueViolation(error)) throw error;
      if (given) throw new DomainError('customer_number_taken', 'customer.error.number_taken', 409, { customer_number: given });
    }
  }
  throw new DomainError('customer_number_exhausted', 'customer.error.number_exhausted', 503);
}

export async function findCustomerByNumber(db: Db, customerNumber: string): Promise<Customer | undefined> {
  if (!customerNumberSchema.safeParse(customerNumber).success) return undefined;
  return db<Customer>('customers').where({ customer_number: customerNumber }).first();
}

export function parseOrThrow<T>(schema: z.ZodType<T>, value: unknown, code: string): T {
  const result = schema.safeParse(value);
  // The schemas' messages are catalogue keys.
  if (!result.success) throw new DomainError(code, result.error.issues[0]?.message ?? 'error.bad_request');
  return result.data;
}
