// Settings > Integrations > Connected Apps (I10, I11): each connection's health and history,
// "Check now", disconnect, and each provider's own resources.

import { get, post, put, patch, del, idempotencyKey, ApiError } from '../api.js';
import { h, replace, field, uid } from '../dom.js';
import { badge, table, confirmDialog, errorBox, toast, actionButton, barChart } from '../ui.js';
import { formatDateTime, relative, HEALTH } from '../format.js';

async function catalogBySlug() {
  const providers = (await get('/integrations/providers')).data;
  return new Map(providers.map((p) => [p.slug, p]));
}

function healthBadge(health) {
  if (!health) return badge('Not checked', 'neutral');
  return badge(HEALTH[health.status] || health.status, health.status === 'healthy' ? 'success' : 'danger');
}

function logo(provider) {
  return h('img', { class: 'logo', src: provider ? provider.logo_url : '/assets/logos/provider.svg', alt: '', width: '44', height: '44' });
}

/** What the OAuth callback's redirect says: `?connected=<connection id>` or `?error=<code>&message=...`. */
const CALLBACK_ERRORS = {
  authorization_denied: 'Connection was cancelled. You denied access.',
  oauth_state_invalid: 'This authorization is unknown, expired or already used. Connect the provider again.',
  authorization_failed: 'The provider did not complete the authorization. Connect the provider again.',
  already_connected: 'This provider is already connected. Disconnect it first to connect another account.',
  permission_denied: 'You no longer have permission to connect integrations in this organization.',
  provider_credentials_invalid: 'The provider refused the granted access. Connect the provider again.',
  provider_unreachable: 'The provider could not be reached. Try again in a few minutes.',
  provider_rate_limited: 'The provider is limiting requests. Try again in a few minutes.',
  provider_not_configured: 'This provider is not available on this server. Ask your administrator.',
  provider_inactive: 'This provider is not available on this server. Ask your administrator.',
};

function callbackMessage(connections, providers) {
  const params = new URLSearchParams(window.location.search);
  const connected = params.get('connected');
  const error = params.get('error');
  if (!connected && !error) return null;
  // Shown once: a reload or a shared link does not show it again.
  history.replaceState(history.state, '', window.location.pathname);
  if (connected) {
    const connection = connections.find((c) => c.id === connected);
    if (!connection) return null;
    const provider = providers.get(connection.provider);
    const name = provider ? provider.name : connection.provider;
    return h('p', { class: 'success-box callback-message', role: 'status' },
      h('span', { class: 'checkmark', 'aria-hidden': 'true' }, '✓'), `${name} connected successfully`);
  }
  // Only the page's own words: the address bar is anyone's to write, so its `message` is never
  // shown (a crafted link must not put a stranger's text under the dashboard's name).
  const message = CALLBACK_ERRORS[error] || 'The connection was not made. Connect the provider again.';
  return h('p', { class: 'error-box callback-message', role: 'alert' }, message);
}

export async function renderList(page, ctx) {
  const [connections, providers] = await Promise.all([get('/integrations/connections'), catalogBySlug()]);
  const live = connections.data.filter((c) => c.status === 'connected');
  const notice = callbackMessage(connections.data, providers);
  const rows = live.map((c) => {
    const provider = providers.get(c.provider);
    const name = provider ? provider.name : c.provider;
    return h('article', { class: 'card connection-card', 'data-provider': c.provider, 'aria-label': name },
      h('div', { class: 'card-head' }, logo(provider), h('h3', {}, name)),
      h('dl', { class: 'details' },
        h('dt', {}, 'Health'), h('dd', {}, healthBadge(c.health)),
        h('dt', {}, 'Last check'), h('dd', {}, c.health ? relative(c.health.checked_at) : 'Never'),
        h('dt', {}, 'Response time'), h('dd', {}, c.health ? `${c.health.response_time_ms} ms` : '—')),
      h('div', { class: 'card-foot' },
        h('a', { class: 'button small', href: `/settings/integrations/connected/${c.id}`, 'aria-label': `Manage ${name}` }, 'Manage')));
  });
  replace(page,
    ctx.tabs('connected'),
    h('div', { class: 'page-header' }, h('div', {}, h('p', { class: 'breadcrumb' }, 'Settings › Integrations'), h('h1', {}, 'Connected Apps'),
      h('p', {}, 'Providers your organization has connected, with their latest health check.'))),
    notice,
    rows.length
      ? h('div', { class: 'cards', id: 'connections' }, rows)
      : h('p', { class: 'empty' }, 'Nothing is connected yet. ', h('a', { href: '/settings/integrations/all' }, 'Browse all integrations'), '.'));
}

export async function renderDetail(page, ctx, id) {
  const [connection, providers] = await Promise.all([get(`/integrations/connections/${encodeURIComponent(id)}`), catalogBySlug()]);
  const provider = providers.get(connection.provider);
  const name = provider ? provider.name : connection.provider;
  const canEdit = ctx.can('settings.edit');
  const connected = connection.status === 'connected';
  const rerender = async () => {
    if (!page.isConnected) return;
    const fresh = h('div', { class: 'page' });
    await renderDetail(fresh, ctx, id);
    page.replaceWith(fresh);
  };

  const actions = h('div', { class: 'actions' });
  if (canEdit && connected) {
    actions.append(
      actionButton('Check now', async () => {
        try {
          const check = await post(`/integrations/connections/${connection.id}/health-checks`, undefined, { idempotency: idempotencyKey() });
          toast(`Health check: ${HEALTH[check.status] || check.status} (${check.response_time_ms} ms)`);
          await rerender();
        } catch (err) {
          toast(err.message, 'error');
        }
      }, { small: false, kind: 'check-now' }),
      h('button', {
        type: 'button', class: 'button danger', id: 'disconnect',
        on: {
          click: async () => {
            const sure = await confirmDialog({
              title: `Disconnect ${name}?`,
              message: `Otesse stops using ${name} and deletes its stored credentials. You can connect it again later.`,
              confirmLabel: 'Disconnect',
              danger: true,
            });
            if (!sure) return;
            try {
              await del(`/integrations/connections/${connection.id}`);
              toast(`${name} was disconnected.`);
              ctx.navigate('/settings/integrations/connected');
            } catch (err) {
              toast(err.message, 'error');
            }
          },
        },
      }, 'Disconnect'));
  }

  const health = connection.health;
  const healthPanel = h('section', { class: 'panel', 'aria-labelledby': 'health-title' },
    h('h2', { id: 'health-title' }, 'Health'),
    h('dl', { class: 'details' },
      h('dt', {}, 'Status'), h('dd', { id: 'health-status' }, connected ? healthBadge(health) : badge('Disconnected', 'neutral')),
      h('dt', {}, 'Last check'), h('dd', {}, health ? `${formatDateTime(health.checked_at)} (${relative(health.checked_at)})` : 'Never'),
      h('dt', {}, 'Response time'), h('dd', {}, health ? `${health.response_time_ms} ms` : '—'),
      h('dt', {}, 'Connected'), h('dd', {}, `${formatDateTime(connection.created_at)}${connection.auth_method === 'preconfigured' ? ' with the deployment\'s credentials' : ''}`)),
    h('h3', {}, 'History'),
    table({
      caption: 'Health check history',
      columns: [
        { label: 'Checked', cell: (c) => formatDateTime(c.checked_at) },
        { label: 'Status', cell: (c) => healthBadge(c) },
        { label: 'Response time', cell: (c) => `${c.response_time_ms} ms` },
        { label: 'Detail', cell: (c) => c.detail || '—' },
      ],
      rows: connection.health_history,
      empty: 'No checks yet.',
    }));

  const sections = [];
  if (connected && provider) {
    for (const type of provider.resource_types) {
      const builder = RESOURCES[type];
      if (builder) sections.push(await builder({ connection, provider, canEdit, rerender }));
    }
  }

  replace(page,
    ctx.tabs('connected'),
    h('div', { class: 'page-header' },
      h('div', {}, h('p', { class: 'breadcrumb' }, h('a', { href: '/settings/integrations/connected' }, 'Connected Apps'), ` › ${name}`),
        h('div', { class: 'card-head' }, logo(provider), h('h1', {}, name))),
      actions),
    healthPanel,
    sections);
}

function section(title, ...children) {
  const id = uid('section');
  return h('section', { class: 'panel resource', 'aria-labelledby': id }, h('h2', { id }, title), children);
}

/** Sender emails (Postmark) and phone numbers (Quo): add, edit, delete, set default. */
function contacts(kind, title, valueLabel, inputType, hint) {
  return async ({ connection, canEdit }) => {
    const base = `/integrations/connections/${connection.id}/${kind}`;
    const container = section(title);
    const body = h('div');
    container.append(body);
    const draw = async () => {
      let listed;
      try {
        listed = (await get(base)).data;
      } catch (err) {
        replace(body, errorBox(err.message));
        return;
      }
      const columns = [
        { label: valueLabel, cell: (c) => h('span', { class: 'contact-value' }, c.value) },
        { label: 'Label', cell: (c) => c.label || '—' },
        { label: 'Default', cell: (c) => (c.is_default ? badge('Default', 'success') : '—') },
      ];
      if (canEdit) {
        columns.push({
          label: 'Actions',
          srOnly: true,
          cell: (c) => h('div', { class: 'actions' },
            c.is_default ? null : actionButton('Set default', async () => {
              try { await post(`${base}/${c.id}/default`); toast(`${c.value} is now the default.`); await draw(); } catch (err) { toast(err.message, 'error'); }
            }, { ariaLabel: `Make ${c.value} the default` }),
            h('button', { type: 'button', class: 'button small', 'aria-label': `Edit ${c.value}`, on: { click: () => editRow(c) } }, 'Edit'),
            actionButton('Delete', async () => {
              const sure = await confirmDialog({ title: `Delete ${c.value}?`, message: `${c.value} will no longer be used${c.is_default ? '; the oldest remaining one becomes the default' : ''}.`, confirmLabel: 'Delete', danger: true });
              if (!sure) return;
              try { await del(`${base}/${c.id}`); toast(`${c.value} was deleted.`); await draw(); } catch (err) { toast(err.message, 'error'); }
            }, { kind: 'danger', ariaLabel: `Delete ${c.value}` })),
        });
      }
      replace(body, table({ caption: title, columns, rows: listed, empty: `No ${title.toLowerCase()} yet.` }));
      if (canEdit) body.append(contactForm({ title: `Add ${valueLabel.toLowerCase()}`, submitLabel: 'Add', onSubmit: (payload) => post(base, payload, { idempotency: idempotencyKey() }).then(draw) }));
    };
    const editRow = (contact) => {
      const form = contactForm({
        title: `Edit ${contact.value}`, submitLabel: 'Save', initial: contact,
        onSubmit: (payload) => patch(`${base}/${contact.id}`, payload).then(draw),
        onCancel: draw,
      });
      replace(body, form);
      form.querySelector('input').focus();
    };
    const contactForm = ({ title: formTitle, submitLabel, initial, onSubmit, onCancel }) => {
      const value = h('input', { type: inputType, name: 'value', required: true, value: initial ? initial.value : '', autocomplete: 'off' });
      const label = h('input', { type: 'text', name: 'label', maxlength: '100', value: initial ? initial.label : '' });
      const error = h('div');
      const submit = h('button', { type: 'submit', class: 'button primary' }, submitLabel);
      const form = h('form', { class: 'form contact-form', novalidate: true },
        h('h3', {}, formTitle),
        h('div', { class: 'grid-2' }, field(valueLabel, value, hint), field('Label (optional)', label)),
        error,
        h('div', { class: 'actions' }, submit, onCancel ? h('button', { type: 'button', class: 'button', on: { click: onCancel } }, 'Cancel') : null));
      form.addEventListener('submit', async (event) => {
        event.preventDefault();
        if (submit.disabled) return;
        replace(error);
        submit.disabled = true;
        try {
          await onSubmit({ value: value.value, label: label.value });
          toast(initial ? 'Saved.' : `${value.value} was added.`);
        } catch (err) {
          submit.disabled = false;
          error.append(errorBox(err instanceof ApiError ? err.message : 'Could not save.'));
        }
      });
      return form;
    };
    await draw();
    return container;
  };
}

/** Stripe: the endpoints Stripe sends webhooks to, with their signing secrets. */
async function stripeEndpoints({ connection, canEdit }) {
  const base = `/integrations/connections/${connection.id}/webhook-endpoints`;
  const container = section('Stripe webhook endpoints');
  const body = h('div');
  container.append(h('p', { class: 'hint' }, 'Create an endpoint in your Stripe dashboard pointing at the URL shown here, then paste the signing secret Stripe gives you.'), body);
  const draw = async () => {
    const listed = (await get(base)).data;
    const columns = [
      { label: 'Receiving URL', cell: (e) => h('code', {}, e.url) },
      { label: 'Events', cell: (e) => e.events.join(', ') },
      { label: 'Description', cell: (e) => e.description || '—' },
      { label: 'Last event', cell: (e) => (e.last_event_at ? relative(e.last_event_at) : 'None yet') },
    ];
    if (canEdit) {
      columns.push({
        label: 'Actions', srOnly: true,
        cell: (e) => actionButton('Delete', async () => {
          const sure = await confirmDialog({ title: 'Delete this endpoint?', message: 'Events Stripe sends to it will be refused.', confirmLabel: 'Delete', danger: true });
          if (!sure) return;
          try { await del(`${base}/${e.id}`); await draw(); } catch (err) { toast(err.message, 'error'); }
        }, { kind: 'danger', ariaLabel: `Delete endpoint ${e.description || e.id}` }),
      });
    }
    replace(body, table({ caption: 'Stripe webhook endpoints', columns, rows: listed, empty: 'No endpoints yet.' }));
    if (!canEdit) return;
    const events = h('input', { type: 'text', value: '*', required: true });
    const secret = h('input', { type: 'password', autocomplete: 'off', required: true });
    const description = h('input', { type: 'text', maxlength: '200' });
    const error = h('div');
    const submit = h('button', { type: 'submit', class: 'button primary' }, 'Add endpoint');
    const form = h('form', { class: 'form', novalidate: true }, h('h3', {}, 'Add an endpoint'),
      field('Events', events, 'Stripe event types separated by commas (charge.succeeded, invoice.paid), or * for all.'),
      field('Signing secret', secret, 'The whsec_... secret Stripe shows for the endpoint. Stored encrypted, never shown again.'),
      field('Description (optional)', description), error, h('div', { class: 'actions' }, submit));
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      if (submit.disabled) return;
      replace(error);
      submit.disabled = true;
      try {
        await post(base, {
          events: events.value.split(',').map((v) => v.trim()).filter(Boolean),
          signing_secret: secret.value,
          description: description.value || undefined,
        }, { idempotency: idempotencyKey() });
        toast('Endpoint added.');
        await draw();
      } catch (err) {
        submit.disabled = false;
        error.append(errorBox(err.message));
      }
    });
    body.append(form);
  };
  await draw();
  return container;
}

async function stripeStatus({ connection }) {
  const status = await get(`/integrations/connections/${connection.id}/status`);
  return section('Stripe connection status',
    h('dl', { class: 'details' },
      h('dt', {}, 'Connection'), h('dd', {}, healthBadge(status.connection.health)),
      h('dt', {}, 'Webhook endpoints'), h('dd', {}, String(status.webhook_endpoints)),
      h('dt', {}, 'Newest event'), h('dd', {}, status.last_event_at ? formatDateTime(status.last_event_at) : 'None yet')));
}

/** Anthropic: which model Otesse uses. */
async function modelSelection({ connection, canEdit }) {
  const container = section('Model');
  let models;
  try {
    models = (await get(`/integrations/connections/${connection.id}/models`)).data;
  } catch (err) {
    container.append(errorBox(err.message));
    return container;
  }
  const current = connection.selected_model;
  const select = h('select', { disabled: !canEdit },
    h('option', { value: '', selected: !current }, 'Choose a model'),
    models.map((m) => h('option', { value: m.id, selected: m.id === current }, `${m.display_name} (${m.id})`)));
  const status = h('p', { class: 'hint', role: 'status' }, current ? `Otesse uses ${current}.` : 'No model chosen yet.');
  container.append(field('Model', select), status);
  if (canEdit) {
    container.append(actionButton('Save model', async () => {
      if (!select.value) return;
      try {
        const saved = await put(`/integrations/connections/${connection.id}/model`, { model: select.value });
        status.textContent = `Otesse uses ${saved.selected_model}.`;
        toast('Model saved.');
      } catch (err) {
        toast(err.message, 'error');
      }
    }, { kind: 'primary', small: false }));
  }
  return container;
}

/** Anthropic: token usage per day, read from the provider. */
async function usageMonitoring({ connection }) {
  const container = section('Usage (last 7 days)');
  let report;
  try {
    report = await get(`/integrations/connections/${connection.id}/usage?days=7`);
  } catch (err) {
    container.append(h('p', { class: 'warning-box' }, err.message));
    return container;
  }
  const points = report.data.map((d) => ({
    label: d.date.slice(5),
    value: d.input_tokens + d.cache_creation_input_tokens + d.cache_read_input_tokens,
    second: d.output_tokens,
  }));
  const summary = `${report.total_input_tokens.toLocaleString()} input and ${report.total_output_tokens.toLocaleString()} output tokens in ${report.days} days.`;
  container.append(
    points.length ? barChart({ title: 'Tokens per day', summary, points, firstLabel: 'input tokens', secondLabel: 'output tokens' }) : h('p', { class: 'empty' }, 'No usage in this period.'),
    h('p', { class: 'legend' }, h('span', {}, h('span', { class: 'swatch', 'aria-hidden': 'true' }), 'Input tokens'), h('span', {}, h('span', { class: 'swatch second', 'aria-hidden': 'true' }), 'Output tokens')),
    h('p', { class: 'hint' }, summary));
  return container;
}

/** Mapbox, Google Maps, Geoapify: the active/inactive toggle. */
async function activeToggle({ connection, provider, canEdit }) {
  const id = uid('toggle');
  const box = h('input', { type: 'checkbox', id, checked: connection.enabled, disabled: !canEdit, role: 'switch' });
  const status = h('p', { class: 'hint', role: 'status' }, connection.enabled ? `${provider.name} is active.` : `${provider.name} is inactive.`);
  box.addEventListener('change', async () => {
    box.disabled = true;
    try {
      const saved = await put(`/integrations/connections/${connection.id}/enabled`, { enabled: box.checked });
      status.textContent = saved.enabled ? `${provider.name} is active.` : `${provider.name} is inactive.`;
    } catch (err) {
      box.checked = !box.checked;
      toast(err.message, 'error');
    } finally {
      box.disabled = !canEdit;
    }
  });
  return section('Active', h('label', { class: 'switch', for: id }, box, 'Use this provider'), status);
}

const RESOURCES = {
  sender_emails: contacts('senders', 'Sender emails', 'Email address', 'email', 'The From address of emails Otesse sends through Postmark.'),
  phone_numbers: contacts('phone-numbers', 'Phone numbers', 'Phone number', 'tel', 'In international format, for example +14155550123.'),
  webhook_endpoints: stripeEndpoints,
  connection_status: stripeStatus,
  model_selection: modelSelection,
  usage_monitoring: usageMonitoring,
  active_toggle: activeToggle,
};
