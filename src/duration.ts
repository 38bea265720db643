// Durations as operators type them: "90s", "15m", "1h", "7d" (a bare number is seconds).
import { DomainError } from './errors.js';

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** Parses a duration into seconds; refuses anything outside [min, max] seconds. */
export function parseDuration(value: string, what: string, limits: { min?: number; max?: number } = {}): number {
  const match = /^(\d{1,7})([smhd]?)$/.exec(value.trim());
  if (!match) throw new DomainError('invalid_duration', 'duration.error.format', 400, { what, value });
  const seconds = Number(match[1]) * UNITS[match[2] || 's']!;
  const { min = 0, max = 365 * 86400 } = limits;
  if (seconds < min || seconds > max) {
    throw new DomainError('invalid_duration', 'duration.error.range', 400, { what, min: formatDuration(min), max: formatDuration(max) });
  }
  return seconds;
}

export function formatDuration(seconds: number): string {
  for (const [unit, size] of [['d', 86400], ['h', 3600], ['m', 60]] as const) {
    if (seconds >= size && seconds % size === 0) return `${seconds / size}${unit}`;
  }
  return `${seconds}s`;
}
