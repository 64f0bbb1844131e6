// Dates, labels and small formatting rules shared by the pages.

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const dateOnly = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });

export function formatDateTime(iso) {
  return iso ? dateTime.format(new Date(iso)) : '—';
}

export function formatDate(iso) {
  return iso ? dateOnly.format(new Date(iso)) : '—';
}

/** "3 minutes ago", for last-used and last-check times. */
export function relative(iso) {
  if (!iso) return 'Never';
  const seconds = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
  const units = [
    ['day', 86400],
    ['hour', 3600],
    ['minute', 60],
  ];
  const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
  for (const [unit, size] of units) {
    if (Math.abs(seconds) >= size) return rtf.format(-Math.round(seconds / size), unit);
  }
  return 'just now';
}

export const LEVELS = { read_only: 'Read-Only', read_write: 'Read-Write', admin: 'Admin' };
export const STATUSES = { active: 'Active', expired: 'Expired', revoked: 'Revoked' };
export const EXPIRATIONS = [
  ['30d', '30 days'],
  ['90d', '90 days'],
  ['1y', '1 year'],
  ['never', 'Never'],
];
export const CATEGORIES = { communication: 'Communication', payment: 'Payment', mapping: 'Mapping', ai: 'AI' };
export const HEALTH = {
  healthy: 'Healthy',
  invalid_credentials: 'Invalid credentials',
  unreachable: 'Unreachable',
  rate_limited: 'Rate limited',
};
export const ROLES = { admin: 'Admin', manager: 'Manager', viewer: 'Viewer' };

export function statusKind(status) {
  return { active: 'success', expired: 'warning', revoked: 'neutral' }[status] || 'neutral';
}

export function plural(count, one, many) {
  return `${count.toLocaleString()} ${count === 1 ? one : many}`;
}
