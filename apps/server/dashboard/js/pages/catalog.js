// Settings > Integrations > All Integrations (seed 002): provider cards with search and a
// category filter, the dependency explanation, and the Connect modal with its live check.

import { get, post, idempotencyKey, ApiError } from '../api.js';
import { h, replace, field, uid } from '../dom.js';
import { badge, openModal, toast } from '../ui.js';
import { CATEGORIES } from '../format.js';

/** Connects still running after their modal was closed: they finish, then say so in a toast. */
const running = new Map();
/** Re-draws the catalog's cards if it is still on screen. */
let refreshVisible = null;

function logo(provider) {
  return h('img', { class: 'logo', src: provider.logo_url || '/assets/logos/provider.svg', alt: '', width: '44', height: '44' });
}

export async function render(page, ctx) {
  const params = new URLSearchParams(window.location.search);
  const state = { q: params.get('q') || '', category: params.get('category') || '' };
  const highlight = params.get('provider');
  const canConnect = ctx.can('settings.edit');
  let all = (await get('/integrations/providers')).data;

  const search = h('input', { type: 'search', id: 'provider-search', value: state.q, autocomplete: 'off', placeholder: 'Search by name or description' });
  const categories = h('ul', { class: 'category-list', role: 'list' });
  const count = h('p', { class: 'hint', role: 'status', id: 'provider-count' });
  const cards = h('div', { class: 'cards', id: 'provider-cards' });

  const drawCategories = () => {
    replace(categories, [['', 'All categories'], ...Object.entries(CATEGORIES)].map(([value, label]) =>
      h('li', {}, h('button', {
        type: 'button', 'aria-pressed': String(state.category === value), 'data-category': value,
        on: { click: () => { state.category = value; drawCategories(); drawCards(); } },
      }, label))));
  };

  let drawn = 0;
  const drawCards = async () => {
    const ticket = ++drawn;
    state.q = search.value;
    const query = new URLSearchParams();
    if (state.q.trim()) query.set('q', state.q.trim());
    if (state.category) query.set('category', state.category);
    const qs = query.toString();
    let providers;
    try {
      providers = qs ? (await get(`/integrations/providers?${qs}`)).data : all;
    } catch (err) {
      replace(cards, h('p', { class: 'error-box', role: 'alert' }, err.message));
      return;
    }
    if (ticket !== drawn) return;
    history.replaceState({}, '', `/settings/integrations/all${qs ? `?${qs}` : ''}`);
    count.textContent = providers.length === 1 ? '1 integration' : `${providers.length} integrations`;
    replace(cards, providers.length
      ? providers.map((p) => card(p, { canConnect, all, onConnect: () => startConnect(p, all) }))
      : h('p', { class: 'empty' }, 'No integration matches your search.'));
  };

  refreshVisible = async () => {
    if (!page.isConnected) return;
    all = (await get('/integrations/providers')).data;
    await drawCards();
  };

  let timer = null;
  for (const event of ['input', 'change', 'search']) {
    search.addEventListener(event, () => {
      clearTimeout(timer);
      timer = setTimeout(drawCards, 200);
    });
  }

  drawCategories();
  await drawCards();
  replace(page,
    ctx.tabs('all'),
    h('div', { class: 'page-header' }, h('div', {}, h('p', { class: 'breadcrumb' }, 'Settings › Integrations'), h('h1', {}, 'All Integrations'),
      h('p', {}, canConnect
        ? 'Connect the providers your organization uses. Credentials are encrypted before they are stored.'
        : 'Browse the providers your organization can use. Ask an admin or manager to connect one.'))),
    h('div', { class: 'catalog' },
      h('aside', { class: 'catalog-sidebar', 'aria-label': 'Filter integrations' },
        field('Search integrations', search),
        h('div', { role: 'group', 'aria-labelledby': 'category-title' }, h('p', { class: 'fieldset-legend', id: 'category-title' }, 'Category'), categories)),
      h('section', { 'aria-label': 'Integrations' }, count, cards)));

  if (highlight) {
    // The router focuses (and scrolls to) the control marked data-autofocus once the page shows.
    const target = page.querySelector(`#provider-${CSS.escape(highlight)}`);
    if (target) {
      target.classList.add('highlight');
      (target.querySelector('button') || target.querySelector('h3')).dataset.autofocus = 'true';
    }
  }
}

function card(provider, { canConnect, all, onConnect }) {
  const titleId = uid('provider-name');
  const foot = h('div', { class: 'card-foot' }, badge(CATEGORIES[provider.category] || provider.category, 'info'));
  if (provider.connection_status === 'connected') {
    foot.append(h('span', { class: 'status-line connected' }, h('span', { class: 'dot green', 'aria-hidden': 'true' }), 'Connected'));
  } else if (!provider.active) {
    foot.append(badge('Unavailable', 'neutral'));
  } else {
    const status = provider.connection_status === 'error'
      ? h('span', { class: 'status-line' }, h('span', { class: 'dot red', 'aria-hidden': 'true' }), 'Connection failed')
      : null;
    const actions = h('div', { class: 'actions' }, status);
    if (canConnect) {
      const pending = running.has(provider.slug);
      actions.append(h('button', {
        type: 'button', class: 'button primary small connect-button', 'aria-describedby': titleId,
        disabled: pending, on: { click: onConnect },
      }, pending ? 'Verifying…' : 'Connect'));
    }
    foot.append(actions);
  }
  return h('article', { class: 'card', id: `provider-${provider.slug}`, 'data-slug': provider.slug, 'aria-labelledby': titleId },
    h('div', { class: 'card-head' }, logo(provider), h('h3', { id: titleId }, provider.name)),
    h('p', {}, provider.description),
    provider.dependencies.length
      ? h('p', { class: 'hint' }, `Requires ${provider.dependencies.map((d) => nameOf(all, d.slug)).join(', ')}.`)
      : null,
    foot);
}

function nameOf(all, slug) {
  const found = all.find((p) => p.slug === slug);
  return found ? found.name : slug;
}

function startConnect(provider, all) {
  const missing = provider.dependencies.filter((d) => {
    const found = all.find((p) => p.slug === d.slug);
    return !found || found.connection_status !== 'connected';
  });
  if (missing.length) dependencyModal(provider, missing, all);
  else connectModal(provider);
}

/** I3: a provider whose dependencies are not connected explains and links to them. */
function dependencyModal(provider, missing, all) {
  const modal = openModal({ title: `${provider.name} needs another integration first` });
  const names = missing.map((d) => nameOf(all, d.slug));
  modal.body.append(
    h('p', { class: 'dependency-message' }, `${provider.name} depends on ${names.join(' and ')}. Connect ${names.length > 1 ? 'them' : 'it'} first, then come back to connect ${provider.name}.`),
    h('ul', {}, missing.map((d) => h('li', {}, h('a', {
      href: `/settings/integrations/all?provider=${encodeURIComponent(d.slug)}`, class: 'dependency-link',
      on: { click: () => modal.close() },
    }, `Go to ${nameOf(all, d.slug)}`)))));
  modal.foot.append(h('button', { type: 'button', class: 'button', on: { click: () => modal.close() } }, 'Close'));
  modal.focusFirst();
}

/** I4-I9, I13: the Connect modal. */
function connectModal(provider) {
  const modal = openModal({
    title: `Connect ${provider.name}`,
    // Closed mid-check: the card shows the check still running.
    onClose: () => { if (running.has(provider.slug) && refreshVisible) refreshVisible(); },
  });
  const inputs = provider.fields.map((f) => {
    const input = h('input', {
      type: f.name === 'account_id' ? 'text' : 'password', name: f.name, required: f.required,
      maxlength: String(f.max_length), autocomplete: 'off', spellcheck: 'false',
    });
    return { f, input, node: field(f.label, input, f.required ? null : 'Optional.') };
  });
  const fields = h('div', { class: 'form' }, inputs.map((i) => i.node));
  let usePreconfigured = null;
  const intro = [h('p', {}, provider.description)];
  if (provider.preconfigured) {
    const id = uid('preconfigured');
    usePreconfigured = h('input', { type: 'checkbox', id, checked: true });
    usePreconfigured.addEventListener('change', () => { fields.hidden = usePreconfigured.checked; });
    fields.hidden = true;
    intro.push(h('div', { class: 'choice' }, usePreconfigured,
      h('label', { for: id }, 'Use the credentials configured for this deployment (no key to type)')));
  } else {
    intro.push(h('p', { class: 'hint' }, 'Your credentials are checked with the provider, then encrypted (AES-256-GCM) before they are stored. They are never shown again.'));
  }
  const progress = h('p', { class: 'progress', role: 'status', 'aria-live': 'polite' });
  const error = h('div', { class: 'connect-error' });
  const submit = h('button', { type: 'submit', class: 'button primary', id: 'connect-submit' }, 'Connect');
  const cancel = h('button', { type: 'button', class: 'button', on: { click: () => modal.requestClose() } }, 'Cancel');
  const form = h('form', { class: 'form', novalidate: true }, intro, fields, progress, error, h('div', { class: 'modal-foot' }, cancel, submit));
  modal.body.append(form);
  modal.focusFirst();

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (submit.disabled) return;
    replace(error);
    const body = {};
    if (usePreconfigured && usePreconfigured.checked) {
      body.use_preconfigured = true;
    } else if (provider.auth_type === 'oauth2') {
      // OAuth2: no form; the answer is the provider's consent page, which comes back to
      // Connected Apps.
    } else {
      const empty = inputs.find((i) => i.f.required && i.input.value.trim() === '');
      if (empty) {
        empty.input.setAttribute('aria-invalid', 'true');
        error.append(h('p', { class: 'error-box', role: 'alert' }, `${empty.f.label} is required.`));
        empty.input.focus();
        return;
      }
      body.credentials = {};
      for (const { f, input } of inputs) {
        input.removeAttribute('aria-invalid');
        if (input.value.trim() !== '') body.credentials[f.name] = input.value;
      }
    }
    submit.disabled = true;
    replace(progress, h('span', { class: 'spinner', 'aria-hidden': 'true' }), 'Verifying connection...');
    const attempt = post(`/integrations/providers/${provider.slug}/connect`, body, { idempotency: idempotencyKey() });
    running.set(provider.slug, attempt);
    let outcome;
    try {
      outcome = { ok: await attempt };
    } catch (err) {
      outcome = { error: err instanceof ApiError ? err.message : 'The connection could not be checked.' };
    } finally {
      running.delete(provider.slug);
    }
    if (outcome.ok && outcome.ok.authorization_url) {
      window.location.assign(outcome.ok.authorization_url);
      return;
    }
    const message = `${provider.name} connected successfully`;
    if (modal.closed) {
      // The modal was closed while the check ran: the check went on; tell how it ended.
      if (outcome.ok) toast(message);
      else toast(`${provider.name} was not connected: ${outcome.error}`, 'error');
      if (refreshVisible) await refreshVisible();
      return;
    }
    if (outcome.ok) {
      modal.setTitle(`${provider.name} connected`);
      replace(modal.body, h('p', { class: 'success-box connect-success', role: 'status' },
        h('span', { class: 'checkmark', 'aria-hidden': 'true' }, '✓'), message));
      replace(modal.foot,
        h('a', { class: 'button', href: '/settings/integrations/connected', on: { click: () => modal.close() } }, 'Go to Connected Apps'),
        h('button', { type: 'button', class: 'button primary', id: 'connect-done', on: { click: () => modal.close() } }, 'Done'));
      modal.foot.lastChild.focus();
      toast(message);
      if (refreshVisible) await refreshVisible();
    } else {
      replace(progress);
      submit.disabled = false;
      error.append(h('p', { class: 'error-box', role: 'alert' }, outcome.error));
      if (refreshVisible) await refreshVisible();
    }
  });
}
