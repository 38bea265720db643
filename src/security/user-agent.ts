// Turns a User-Agent header into "Chrome 156 on Linux" for alert emails and device lists (bowser, MIT).
import Bowser from 'bowser';

export interface DeviceDescription {
  browser: string;
  os: string;
}

export function describeUserAgent(userAgent: string | undefined): DeviceDescription {
  if (!userAgent) return { browser: 'unknown', os: 'unknown' };
  try {
    const parsed = Bowser.parse(userAgent.slice(0, 512));
    const major = parsed.browser.version?.split('.')[0];
    const browser = parsed.browser.name ? `${parsed.browser.name}${major ? ` ${major}` : ''}` : 'unknown';
    const os = parsed.os.name ? `${parsed.os.name}${parsed.os.versionName ? ` ${parsed.os.versionName}` : ''}` : 'unknown';
    return { browser, os };
  } catch {
    return { browser: 'unknown', os: 'unknown' };
  }
}
