// Settings > Integrations > API Keys (seed 003): the key table and "Generate API Key".

import { get, post, idempotencyKey, ApiError } from '../api.js';
import { h, replace, field, uid } from '../dom.js';
import { badge, table, openModal, confirmDialog, errorBox, toast, revealOnce } from '../ui.js';
import { formatDate, formatDateTime, relative, LEVELS, STATUSES, EXPIRATIONS, statusKind } from '../format.js';

export const MAX_ACTIVE_KEYS = 25;
export const LIMIT_TEXT =
  'Your organization has 25 active API keys, the most it can have. Revoke a key you no longer use to generate a new one.';

/** The seed's words when a key is closed without copying. */
export const KEY_NOT_SHOWN_AGAIN = 'Are you sure? This key will not be shown again.';

/** What the one-time display lists beside a new key. */
export function keyFacts(created) {
  return [
    ['Name', created.name],
    ['Scope Level', LEVELS[created.scope_level] || created.scope_level],
    ['Environment', created.environment === 'live' ? 'Live' : 'Test'],
    ['Expires', created.expires_at ? formatDate(created.expires_at) : 'Never'],
  ];
}

export async function render(page, ctx) {
  const [list, catalog] = await Promise.all([get('/api-keys'), get('/scopes')]);
  const keys = list.data;
  const active = keys.filter((k) => k.status === 'active').length;
  const canEdit = ctx.can('settings.edit');
  const rerender = async () => {
    const fresh = h('div', { class: 'page' });
    await render(fresh, ctx);
    page.replaceWith(fresh);
  };

  const header = h(
    'div',
    { class: 'page-header' },
    h('div', {}, h('p', { class: 'breadcrumb' }, 'Settings › Integrations'), h('h1', {}, 'API Keys'),
      h('p', {}, 'Keys let your own programs call the Otesse API. Each key is shown once, when it is generated.')),
  );
  if (canEdit) {
    const atLimit = active >= MAX_ACTIVE_KEYS;
    const noteId = uid('limit');
    const button = h('button', {
      type: 'button', class: 'button primary', id: 'generate-key',
      disabled: atLimit, 'aria-describedby': atLimit ? noteId : null,
    }, 'Generate API Key');
    button.addEventListener('click', () => openGenerate(ctx, catalog, rerender));
    header.append(h('div', {}, button, atLimit ? h('p', { class: 'limit-note', id: noteId }, LIMIT_TEXT) : null));
  }

  const columns = [
    { label: 'Name', cell: (k) => h('a', { href: `/settings/integrations/api-keys/${k.id}`, class: 'key-name' }, k.name) },
    { label: 'Key', cell: (k) => h('code', { class: 'masked-key' }, k.masked_key) },
    { label: 'Scope Level', cell: (k) => badge(LEVELS[k.scope_level] || k.scope_level, k.scope_level) },
    { label: 'Created', cell: (k) => formatDate(k.created_at) },
    {
      label: 'Expires',
      cell: (k) => {
        if (!k.expires_at) return 'Never';
        if (!k.expires_soon) return formatDate(k.expires_at);
        return h('span', { class: 'expires-soon' }, formatDate(k.expires_at), h('span', { class: 'sr-only' }, ' (expires within 7 days)'));
      },
    },
    { label: 'Last Used', cell: (k) => (k.last_used_at ? h('span', { title: formatDateTime(k.last_used_at) }, relative(k.last_used_at)) : 'Never') },
    { label: 'Status', cell: (k) => badge(STATUSES[k.status] || k.status, statusKind(k.status)) },
  ];
  if (canEdit) {
    columns.push({
      label: 'Actions',
      srOnly: true,
      cell: (k) =>
        k.status === 'active'
          ? h('button', {
            type: 'button', class: 'button small danger revoke-button', 'aria-label': `Revoke ${k.name}`,
            on: { click: async () => { if (await revokeKey(k)) await rerender(); } },
          }, 'Revoke')
          : null,
    });
  }
  replace(
    page,
    ctx.tabs('api-keys'),
    header,
    h('div', { class: 'panel' },
      table({
        caption: 'API keys',
        columns,
        rows: keys,
        rowClass: (k) => (k.status === 'active' ? null : 'revoked'),
        empty: 'No API keys yet. Generate one to let a program call the Otesse API.',
      }),
      h('p', { class: 'hint' }, `${active} of ${MAX_ACTIVE_KEYS} active keys.`)),
  );
}

/** Revoke with the seed's confirmation; answers true when revoked. */
export async function revokeKey(key) {
  // The list does not know about the last 24 hours: ask the detail.
  let used = false;
  try {
    used = (await get(`/api-keys/${key.id}`)).used_in_last_24h;
  } catch {
    used = false;
  }
  const confirmed = await confirmDialog({
    title: `Revoke ${key.name}?`,
    message: 'Revoking this key will immediately disable all API access using it. This cannot be undone.',
    extra: used ? 'This key was used in the last 24 hours: programs using it right now will start failing.' : null,
    confirmLabel: 'Revoke key',
    danger: true,
  });
  if (!confirmed) return false;
  try {
    await post(`/api-keys/${key.id}/revoke`);
    toast(`${key.name} was revoked.`);
    return true;
  } catch (err) {
    toast(err.message, 'error');
    return false;
  }
}

function groupScopes(scopes) {
  const groups = new Map();
  for (const scope of scopes) {
    const resource = scope.name.split('.')[0];
    if (!groups.has(resource)) groups.set(resource, []);
    groups.get(resource).push(scope);
  }
  return groups;
}

/** The "Generate API Key" modal (K3), then the key shown once. */
function openGenerate(ctx, catalog, onDone) {
  const canGrantSensitive = ctx.can('scopes.grant_sensitive');
  const modal = openModal({ title: 'Generate API Key', wide: true });
  // One idempotency key per modal: a double click, or a retry after a lost answer, makes one key.
  const requestKey = idempotencyKey();

  const name = h('input', { type: 'text', name: 'name', maxlength: '100', required: true, autocomplete: 'off' });
  const description = h('textarea', { name: 'description', maxlength: '500' });
  const level = h('select', { name: 'scope_level' },
    catalog.levels.map((l) => h('option', { value: l.name, selected: l.name === 'read_only' }, LEVELS[l.name] || l.name)));
  const levelHint = h('p', { class: 'hint', id: uid('level-hint') });
  level.setAttribute('aria-describedby', levelHint.id);
  const boxes = [];
  const scopeGroups = h('div', { class: 'scope-groups' });
  for (const [resource, scopes] of groupScopes(catalog.data)) {
    const set = h('fieldset', { class: 'scope-group' }, h('legend', {}, resource));
    for (const scope of scopes) {
      const id = uid('scope');
      const box = h('input', { type: 'checkbox', id, value: scope.name, name: 'scopes' });
      const descId = uid('scope-desc');
      box.setAttribute('aria-describedby', descId);
      const label = h('label', { for: id },
        h('code', {}, scope.name),
        scope.sensitive ? h('span', { class: 'warn-icon', title: 'Sensitive scope' }, ' ⚠', h('span', { class: 'sr-only' }, ' sensitive scope')) : null);
      const note = scope.sensitive && !canGrantSensitive ? ' Only an admin can grant this scope.' : '';
      const row = h('div', { class: 'choice' }, box, h('div', {}, label, h('p', { class: 'hint', id: descId }, scope.description + note)));
      boxes.push({ box, row, scope });
      set.append(row);
    }
    scopeGroups.append(set);
  }
  const expiration = h('select', { name: 'expires_in' }, EXPIRATIONS.map(([value, label]) => h('option', { value, selected: value === '90d' }, label)));
  const envName = uid('env');
  const environment = h('fieldset', {}, h('legend', {}, 'Environment'),
    h('div', { class: 'choices-inline' },
      ['live', 'test'].map((env) => {
        const id = uid('env');
        return h('div', { class: 'choice' }, h('input', { type: 'radio', name: envName, id, value: env, checked: env === 'live' }),
          h('label', { for: id }, env === 'live' ? 'Live' : 'Test'));
      })));
  const ips = h('textarea', { name: 'allowed_ips', placeholder: '203.0.113.7\n198.51.100.0/24' });
  const error = h('div', { class: 'form-errors' });

  function applyLevel() {
    const chosen = level.value;
    const info = catalog.levels.find((l) => l.name === chosen);
    levelHint.textContent = info ? info.description : '';
    for (const { box, row, scope } of boxes) {
      const allowed = scope.levels.includes(chosen) && (!scope.sensitive || canGrantSensitive);
      box.disabled = !allowed;
      if (!allowed) box.checked = false;
      row.classList.toggle('disabled', !allowed);
    }
  }
  level.addEventListener('change', applyLevel);
  applyLevel();

  const form = h('form', { class: 'form', novalidate: true },
    field('Name', name, '1 to 100 characters, unique among active keys. For example "Production Backend".'),
    field('Description (optional)', description, 'Up to 500 characters.'),
    h('div', { class: 'field' }, h('label', { for: level.id = uid('level') }, 'Permission Scope'), level, levelHint),
    h('fieldset', {}, h('legend', {}, 'Granular scopes'), h('p', { class: 'hint' }, 'Select only what the integration needs. ⚠ marks sensitive scopes.'), scopeGroups),
    field('Expiration', expiration, 'Expiration can never be extended later.'),
    environment,
    field('IP allow-list (optional)', ips, 'Addresses or CIDR ranges, one per line. Empty allows every address.'),
    error);
  const submit = h('button', { type: 'submit', class: 'button primary', id: 'generate-submit' }, 'Generate API Key');
  const cancel = h('button', { type: 'button', class: 'button', on: { click: () => modal.close() } }, 'Cancel');
  form.append(h('div', { class: 'modal-foot' }, cancel, submit));
  modal.body.append(form);
  modal.focusFirst();

  let sending = false;
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (sending) return;
    replace(error);
    if (name.value.trim() === '') {
      name.setAttribute('aria-invalid', 'true');
      error.append(errorBox('Name is required.'));
      name.focus();
      return;
    }
    name.removeAttribute('aria-invalid');
    sending = true;
    submit.disabled = true;
    submit.textContent = 'Generating…';
    const body = {
      name: name.value,
      description: description.value,
      scope_level: level.value,
      scopes: boxes.filter((b) => b.box.checked).map((b) => b.scope.name),
      expires_in: expiration.value,
      environment: form.querySelector(`input[name="${envName}"]:checked`).value,
      allowed_ips: ips.value.split(/[\s,]+/).map((v) => v.trim()).filter(Boolean),
    };
    try {
      showKey(await post('/api-keys', body, { idempotency: requestKey }));
    } catch (err) {
      sending = false;
      submit.disabled = false;
      submit.textContent = 'Generate API Key';
      error.append(errorBox(err instanceof ApiError ? err.message : 'The key could not be generated.'));
    }
  });

  function showKey(created) {
    revealOnce(modal, {
      title: 'Your new API key',
      warning: 'This key is shown only once. Copy it now and store it securely: you will not be able to see it again.',
      label: `API key ${created.name}`,
      value: created.key,
      details: keyFacts(created),
      confirmMessage: KEY_NOT_SHOWN_AGAIN,
      onClosed: onDone,
    });
  }
}
