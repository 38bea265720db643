// The customer's look: a brand colour (BRAND_COLOR) and logo (BRAND_LOGO_PATH), checked at start-up.
// No inline styles are allowed (CSP), so the colour goes into the one stylesheet, computed at start-up,
// and the logo is served by the provider itself at /static/logo (CSP img-src 'self').
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

export const DEFAULT_BRAND_COLOR = '#0b5cad';
/** WCAG 2.x AA for normal text: white text on the brand colour, and brand-coloured links on white. */
export const MIN_CONTRAST = 4.5;
const MAX_LOGO_BYTES = 512 * 1024;

function channel(hex: string, index: number): number {
  return parseInt(hex.slice(1 + index * 2, 3 + index * 2), 16);
}

/** WCAG relative luminance of a #rrggbb colour. */
export function luminance(hex: string): number {
  const [r, g, b] = [0, 1, 2].map((i) => {
    const c = channel(hex, i) / 255;
    return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r! + 0.7152 * g! + 0.0722 * b!;
}

export function contrastRatio(a: string, b: string): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi! + 0.05) / (lo! + 0.05);
}

/** "#ABC" or "#aabbcc" → "#aabbcc"; undefined when it is not a hex colour. */
export function normalizeHexColor(value: string): string | undefined {
  const v = value.trim().toLowerCase();
  if (/^#[0-9a-f]{6}$/.test(v)) return v;
  if (/^#[0-9a-f]{3}$/.test(v)) return `#${[...v.slice(1)].map((c) => c + c).join('')}`;
  return undefined;
}

/** Mixes `hex` with black (amount < 0) or white (amount > 0). */
function mix(hex: string, amount: number): string {
  const target = amount < 0 ? 0 : 255;
  const a = Math.abs(amount);
  return `#${[0, 1, 2].map((i) => Math.round(channel(hex, i) + (target - channel(hex, i)) * a).toString(16).padStart(2, '0')).join('')}`;
}

export interface BrandLogo {
  contentType: 'image/png' | 'image/svg+xml';
  data: Buffer;
}

/** Reads and checks the logo file: a PNG or an SVG of at most 512 KiB. Throws an Error saying what is wrong. */
export function readBrandLogo(file: string): BrandLogo {
  let data: Buffer;
  try {
    data = readFileSync(file);
  } catch (error) {
    throw new Error(`cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  if (data.length > MAX_LOGO_BYTES) throw new Error(`${file} is larger than 512 KiB`);
  if (data.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) return { contentType: 'image/png', data };
  if (/\.svg$/i.test(file) && /<svg[\s>]/i.test(data.subarray(0, 4096).toString('utf8'))) return { contentType: 'image/svg+xml', data };
  throw new Error(`${file} is neither a PNG nor an SVG file`);
}

export interface Brand {
  name: string;
  color: string;
  logo: BrandLogo | undefined;
  /** The stylesheet: brand colours as custom properties, then public/style.css. */
  stylesheet: Buffer;
  /** Changes whenever the stylesheet or the logo does: appended to their URLs to bust caches. */
  version: string;
}

/** What views need to know of the brand. */
export interface BrandView {
  name: string;
  hasLogo: boolean;
  version: string;
}

const BASE_STYLESHEET = readFileSync(new URL('../../public/style.css', import.meta.url), 'utf8');

export function buildBrand(options: { name: string; color?: string | undefined; logo?: BrandLogo | undefined }): Brand {
  const color = normalizeHexColor(options.color ?? DEFAULT_BRAND_COLOR) ?? DEFAULT_BRAND_COLOR;
  const vars = `:root { --brand: ${color}; --brand-dark: ${mix(color, -0.25)}; --brand-tint: ${mix(color, 0.9)}; --focus: ${mix(color, -0.15)}; }\n`;
  const stylesheet = Buffer.from(vars + BASE_STYLESHEET);
  const hash = createHash('sha256').update(stylesheet);
  if (options.logo) hash.update(options.logo.data);
  return { name: options.name, color, logo: options.logo, stylesheet, version: hash.digest('base64url').slice(0, 12) };
}

export function brandView(brand: Brand): BrandView {
  return { name: brand.name, hasLogo: Boolean(brand.logo), version: brand.version };
}
