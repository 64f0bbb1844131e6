// Settings > Audit log (K16, I9): who did what and when, filtered by actor, action and date.

import { get } from '../api.js';
import { h, replace, field } from '../dom.js';
import { table, errorBox, badge } from '../ui.js';
import { formatDateTime } from '../format.js';

const ACTIONS = {
  'api_key.created': 'API key created',
  'api_key.rotated': 'API key rotated',
  'api_key.revoked': 'API key revoked',
  'integration.connected': 'Integration connected',
  'integration.connect_failed': 'Integration connection failed',
  'integration.disconnected': 'Integration disconnected',
  'integration.updated': 'Integration updated',
};

export async function render(page, ctx) {
  const params = new URLSearchParams(window.location.search);
  let users = [];
  if (ctx.can('users.manage')) {
    try {
      users = (await get('/users')).data;
    } catch {
      users = [];
    }
  }
  const emails = new Map(users.map((u) => [u.id, u.email]));
  emails.set(ctx.me.user.id, ctx.me.user.email);

  const actor = h('select', { name: 'actor' },
    h('option', { value: '' }, 'Anyone'),
    (users.length ? users : [ctx.me.user]).map((u) => h('option', { value: u.id, selected: params.get('actor') === u.id }, u.email)));
  const action = h('select', { name: 'action' },
    h('option', { value: '' }, 'Any action'),
    Object.entries(ACTIONS).map(([value, label]) => h('option', { value, selected: params.get('action') === value }, label)));
  const from = h('input', { type: 'date', name: 'from', value: params.get('from') || '' });
  const to = h('input', { type: 'date', name: 'to', value: params.get('to') || '' });
  const results = h('div', { class: 'panel', id: 'audit-results' });
  const status = h('p', { class: 'hint', role: 'status' });
  const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter the audit log' },
    field('Actor', actor), field('Action', action), field('From', from), field('To', to),
    h('button', { type: 'submit', class: 'button primary' }, 'Apply filters'));

  let rows = [];
  let cursor = null;
  const query = () => {
    const q = new URLSearchParams();
    if (actor.value) q.set('actor', actor.value);
    if (action.value) q.set('action', action.value);
    // Dates are the user's own days: from the start of `from` to the end of `to`, local time.
    if (from.value) q.set('from', new Date(`${from.value}T00:00:00`).toISOString());
    if (to.value) q.set('to', new Date(`${to.value}T23:59:59.999`).toISOString());
    return q;
  };
  const draw = () => {
    replace(results, table({
      caption: 'Audit log entries',
      columns: [
        { label: 'Time', cell: (e) => formatDateTime(e.occurred_at) },
        { label: 'Action', cell: (e) => h('span', {}, ACTIONS[e.action] || e.action, ' ', h('code', { class: 'hint' }, e.action)) },
        { label: 'Actor', cell: (e) => actorName(e, emails) },
        { label: 'Target', cell: (e) => describeTarget(e) },
        { label: 'Details', cell: (e) => details(e.details) },
      ],
      rows,
      empty: 'No entries match these filters.',
    }));
    if (cursor) {
      results.append(h('button', { type: 'button', class: 'button', on: { click: () => load(false) } }, 'Load more'));
    }
    status.textContent = `${rows.length} ${rows.length === 1 ? 'entry' : 'entries'} shown.`;
  };
  const load = async (fresh) => {
    const q = query();
    if (fresh) {
      rows = [];
      cursor = null;
      const shown = new URLSearchParams();
      for (const [name, input] of [['actor', actor], ['action', action], ['from', from], ['to', to]]) if (input.value) shown.set(name, input.value);
      history.replaceState({}, '', `/settings/audit-log${shown.toString() ? `?${shown}` : ''}`);
    }
    q.set('limit', '50');
    if (cursor) q.set('cursor', cursor);
    try {
      const page = await get(`/integrations/audit-log?${q}`);
      rows = rows.concat(page.data);
      cursor = page.has_more ? page.next_cursor : null;
      draw();
    } catch (err) {
      replace(results, errorBox(err.message));
    }
  };
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    load(true);
  });
  await load(true);
  replace(page,
    h('div', { class: 'page-header' }, h('div', {}, h('p', { class: 'breadcrumb' }, 'Settings'), h('h1', {}, 'Audit log'),
      h('p', {}, 'Every key and integration change, with who made it and when.'))),
    form, status, results);
}

function actorName(entry, emails) {
  if (entry.actor_type === 'system') return badge('System', 'neutral');
  if (entry.actor_type === 'api_key') return h('span', {}, badge('API key', 'info'), ' ', h('code', {}, entry.actor_id));
  return emails.get(entry.actor_id) || entry.actor_id;
}

function describeTarget(entry) {
  const name = entry.details.name || entry.details.provider;
  return h('span', {}, entry.target_type.replace('_', ' '), name ? `: ${name}` : '');
}

function details(map) {
  const entries = Object.entries(map || {});
  if (!entries.length) return '—';
  return h('span', { class: 'audit-details' }, entries.map(([k, v], i) => [i ? ', ' : '', h('span', { class: 'hint' }, `${k}: `), v]));
}
