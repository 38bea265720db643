// What a page needs to show an authenticator set-up: the QR code (PNG data URL, allowed by our CSP)
// and the key in groups of four for manual entry.
import QRCode from 'qrcode';
import { otpauthUri } from '../accounts/totp.js';

export async function totpSetupView(brandName: string, email: string, secret: string): Promise<{ qrDataUrl: string; secretGroups: string }> {
  return {
    qrDataUrl: await QRCode.toDataURL(otpauthUri(brandName, email, secret), { errorCorrectionLevel: 'M', margin: 2, width: 220 }),
    secretGroups: secret.replace(/(.{4})/g, '$1 ').trim(),
  };
}
