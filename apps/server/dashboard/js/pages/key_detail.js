// One API key (K9): its configuration, scopes, usage, a chart of requests per day, the last 50
// requests; Rotate (K12) and Revoke (K11).

import { get, post, idempotencyKey, ApiError } from '../api.js';
import { h, replace, field, uid } from '../dom.js';
import { badge, table, openModal, errorBox, barChart, revealOnce } from '../ui.js';
import { formatDate, formatDateTime, relative, LEVELS, STATUSES, statusKind, plural } from '../format.js';
import { revokeKey, keyFacts, KEY_NOT_SHOWN_AGAIN } from './keys.js';

const CHART_DAYS = 14;
const CHART_MAX_PAGES = 10;

function dayKey(date) {
  return `${date.getFullYear()}-${String(date.getMonth() + 1).padStart(2, '0')}-${String(date.getDate()).padStart(2, '0')}`;
}

/** Requests per day over the last CHART_DAYS days, counted from the usage log's pages. */
async function requestsPerDay(id) {
  const since = new Date();
  since.setHours(0, 0, 0, 0);
  since.setDate(since.getDate() - (CHART_DAYS - 1));
  const counts = new Map();
  let cursor = null;
  let pages = 0;
  let complete = true;
  for (;;) {
    const page = await get(`/api-keys/${id}/usage?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    pages += 1;
    let reachedOlder = false;
    for (const entry of page.data) {
      const at = new Date(entry.occurred_at);
      if (at < since) {
        reachedOlder = true;
        break;
      }
      const day = dayKey(at);
      counts.set(day, (counts.get(day) || 0) + 1);
    }
    if (reachedOlder || !page.has_more) break;
    if (pages >= CHART_MAX_PAGES) {
      complete = false;
      break;
    }
    cursor = page.next_cursor;
  }
  const points = [];
  for (let i = 0; i < CHART_DAYS; i += 1) {
    const day = new Date(since);
    day.setDate(since.getDate() + i);
    const key = dayKey(day);
    points.push({ label: `${day.getMonth() + 1}/${day.getDate()}`, day: key, value: counts.get(key) || 0 });
  }
  return { points, complete, counted: Array.from(counts.values()).reduce((a, b) => a + b, 0) };
}

export async function render(page, ctx, id) {
  const key = await get(`/api-keys/${encodeURIComponent(id)}`);
  const chart = await requestsPerDay(key.id);
  const canEdit = ctx.can('settings.edit');
  const creator = key.created_by === ctx.me.user.id ? `${ctx.me.user.email} (you)` : creatorName(key.creator);
  const rerender = async () => {
    if (!ctx.isCurrent()) return;
    const fresh = h('div', { class: 'page' });
    await render(fresh, ctx, id);
    page.replaceWith(fresh);
  };

  const actions = h('div', { class: 'actions' });
  if (canEdit && key.status === 'active') {
    actions.append(
      h('button', { type: 'button', class: 'button', id: 'rotate-key', on: { click: () => openRotate(ctx, key) } }, 'Rotate'),
      h('button', {
        type: 'button', class: 'button danger', id: 'revoke-key',
        on: { click: async () => { if (await revokeKey(key)) await rerender(); } },
      }, 'Revoke'),
    );
  }

  const config = h('dl', { class: 'details' },
    [
      ['Name', key.name],
      ['Description', key.description || '—'],
      ['Key', h('code', {}, key.masked_key)],
      ['Scope Level', badge(LEVELS[key.scope_level] || key.scope_level, key.scope_level)],
      ['Environment', key.environment === 'live' ? 'Live' : 'Test'],
      ['Status', badge(STATUSES[key.status] || key.status, statusKind(key.status))],
      ['Created', `${formatDateTime(key.created_at)} by ${creator}`],
      ['Expires', key.expires_at
        ? h('span', { class: key.expires_soon ? 'expires-soon' : null }, formatDateTime(key.expires_at), key.expires_soon ? ' (within 7 days)' : '')
        : 'Never'],
      key.revoked_at ? ['Revoked', formatDateTime(key.revoked_at)] : null,
      ['IP allow-list', key.allowed_ips.length ? key.allowed_ips.join(', ') : 'Any address'],
      key.rotated_from ? ['Rotated from', h('a', { href: `/settings/integrations/api-keys/${key.rotated_from}` }, 'the previous key')] : null,
    ].filter(Boolean).map(([term, value]) => [h('dt', {}, term), h('dd', {}, value)]),
  );

  const scopes = key.scope_details.length
    ? h('ul', { class: 'scope-list' }, key.scope_details.map((s) =>
      h('li', {}, h('code', {}, s.name), s.sensitive ? h('span', { class: 'warn-icon', title: 'Sensitive scope' }, ' ⚠', h('span', { class: 'sr-only' }, ' sensitive')) : null, ` — ${s.description}`)))
    : h('p', { class: 'empty' }, 'No granular scopes: this key can only ask which key it is (GET /v1/whoami).');

  const usage = h('dl', { class: 'details usage-summary' },
    h('dt', {}, 'Total requests'), h('dd', { id: 'usage-total' }, key.usage.total_requests.toLocaleString()),
    h('dt', {}, 'Unique IP addresses'), h('dd', { id: 'usage-ips' }, key.usage.unique_ips.toLocaleString()),
    h('dt', {}, 'Last used'), h('dd', { id: 'usage-last' }, key.usage.last_used_at ? `${formatDateTime(key.usage.last_used_at)} (${relative(key.usage.last_used_at)})` : 'Never'),
    h('dt', {}, 'Used in the last 24 hours'), h('dd', {}, key.used_in_last_24h ? 'Yes' : 'No'));

  const summary = `${plural(chart.counted, 'request', 'requests')} in the last ${CHART_DAYS} days${chart.complete ? '' : ' (counted from the latest 1,000 requests)'}.`;
  const requests = table({
    caption: 'The last 50 requests',
    columns: [
      { label: 'Time', cell: (r) => formatDateTime(r.occurred_at) },
      { label: 'Method', cell: (r) => h('code', {}, r.method) },
      { label: 'Endpoint', cell: (r) => h('code', {}, r.endpoint) },
      { label: 'Status', cell: (r) => badge(String(r.status), r.status < 400 ? 'success' : r.status < 500 ? 'warning' : 'danger') },
      { label: 'Response time', cell: (r) => `${r.response_time_ms} ms` },
      { label: 'IP', cell: (r) => r.ip || '—' },
    ],
    rows: key.recent_requests,
    empty: 'No requests yet.',
  });

  replace(page,
    ctx.tabs('api-keys'),
    h('div', { class: 'page-header' },
      h('div', {}, h('p', { class: 'breadcrumb' }, h('a', { href: '/settings/integrations/api-keys' }, 'API Keys'), ' › Key'),
        h('h1', {}, key.name)),
      actions),
    h('div', { class: 'grid-2' },
      h('section', { class: 'panel', 'aria-labelledby': 'config-title' }, h('h2', { id: 'config-title' }, 'Configuration'), config),
      h('section', { class: 'panel', 'aria-labelledby': 'usage-title' }, h('h2', { id: 'usage-title' }, 'Usage'), usage)),
    h('section', { class: 'panel', 'aria-labelledby': 'scopes-title' }, h('h2', { id: 'scopes-title' }, 'Granted scopes'), scopes),
    h('section', { class: 'panel', 'aria-labelledby': 'chart-title' }, h('h2', { id: 'chart-title' }, 'Requests per day'),
      barChart({ title: 'Requests per day', summary, points: chart.points, firstLabel: 'requests' }),
      h('p', { class: 'hint', id: 'chart-summary' }, summary)),
    h('section', { class: 'panel', 'aria-labelledby': 'recent-title' }, h('h2', { id: 'recent-title' }, 'Recent requests'), requests));
}

/** The key's creator by name and email, as the API names them (also once deleted). */
function creatorName(creator) {
  if (!creator) return 'a former user';
  const who = creator.name ? `${creator.name} <${creator.email}>` : creator.email;
  return creator.status === 'active' ? who : `${who} (${creator.status})`;
}

function localInputValue(date) {
  const pad = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** Rotate (K12): a new key with the same settings; the old one ends now, later, or when revoked. */
function openRotate(ctx, key) {
  const modal = openModal({ title: `Rotate ${key.name}` });
  const requestKey = idempotencyKey();
  const name = h('input', { type: 'text', maxlength: '100', placeholder: `${key.name} (rotated)`, autocomplete: 'off' });
  const group = uid('old-key');
  const option = (value, label, checked) => {
    const id = uid('old');
    return h('div', { class: 'choice' }, h('input', { type: 'radio', name: group, id, value, checked }), h('label', { for: id }, label));
  };
  const later = h('input', { type: 'datetime-local', 'aria-label': 'When the old key stops working' });
  const inADay = new Date(Date.now() + 24 * 3600 * 1000);
  later.value = localInputValue(key.expires_at && new Date(key.expires_at) < inADay ? new Date(key.expires_at) : inADay);
  later.min = localInputValue(new Date());
  if (key.expires_at) later.max = localInputValue(new Date(key.expires_at));
  const error = h('div');
  const form = h('form', { class: 'form', novalidate: true },
    h('p', {}, 'A new key is generated with the same scopes, environment, allow-list and expiration period. Update your integration, check the new key works in its usage log, then end the old one.'),
    field('New key name (optional)', name),
    h('fieldset', {}, h('legend', {}, 'The old key'),
      option('keep', 'Keeps working until I revoke it', true),
      option('at', 'Stops working at a chosen time', false),
      h('div', { class: 'field' }, later),
      option('now', 'Stops working now', false)),
    error);
  const submit = h('button', { type: 'submit', class: 'button primary', id: 'rotate-submit' }, 'Rotate key');
  form.append(h('div', { class: 'modal-foot' }, h('button', { type: 'button', class: 'button', on: { click: () => modal.close() } }, 'Cancel'), submit));
  modal.body.append(form);
  modal.focusFirst();

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (submit.disabled) return;
    replace(error);
    const choice = form.querySelector(`input[name="${group}"]:checked`).value;
    const body = {};
    if (name.value.trim()) body.name = name.value;
    if (choice === 'now') body.revoke_old_at = new Date().toISOString();
    if (choice === 'at') {
      const when = new Date(later.value);
      if (Number.isNaN(when.getTime())) {
        error.append(errorBox('Choose when the old key stops working.'));
        later.focus();
        return;
      }
      body.revoke_old_at = when.toISOString();
    }
    submit.disabled = true;
    try {
      const created = await post(`/api-keys/${key.id}/rotate`, body, { idempotency: requestKey });
      revealOnce(modal, {
        title: 'Your new API key',
        warning: 'This key is shown only once. Copy it now and store it securely: you will not be able to see it again.',
        label: `API key ${created.name}`,
        value: created.key,
        details: keyFacts(created),
        confirmMessage: KEY_NOT_SHOWN_AGAIN,
        onClosed: () => ctx.navigate(`/settings/integrations/api-keys/${created.id}`),
      });
    } catch (err) {
      submit.disabled = false;
      error.append(errorBox(err instanceof ApiError ? err.message : 'The key could not be rotated.'));
    }
  });
}
