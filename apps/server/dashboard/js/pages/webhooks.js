// Settings > Integrations > Webhooks (W3): endpoints, the signing secret shown once, secret
// rotation, disabling, "Send test event" and the delivery log.

import { get, post, patch, idempotencyKey, ApiError } from '../api.js';
import { h, replace, field, uid } from '../dom.js';
import { badge, table, openModal, confirmDialog, errorBox, toast, actionButton, revealOnce } from '../ui.js';
import { formatDateTime } from '../format.js';

const SECRET_NOT_SHOWN_AGAIN = 'Are you sure? This signing secret will not be shown again.';
const STATE_KIND = { succeeded: 'success', failed: 'danger', pending: 'warning' };

export async function render(page, ctx) {
  const [endpoints, types] = await Promise.all([get('/webhook-endpoints'), get('/event-types')]);
  const canEdit = ctx.can('settings.edit');
  const rerender = async () => {
    if (!page.isConnected) return;
    const fresh = h('div', { class: 'page' });
    await render(fresh, ctx);
    page.replaceWith(fresh);
  };
  const header = h('div', { class: 'page-header' },
    h('div', {}, h('p', { class: 'breadcrumb' }, 'Settings › Integrations'), h('h1', {}, 'Webhooks'),
      h('p', {}, 'Otesse sends signed events (Standard Webhooks, HMAC-SHA256) to the URLs you register here.')));
  if (canEdit) {
    header.append(h('button', { type: 'button', class: 'button primary', id: 'add-endpoint', on: { click: () => addEndpoint(types.data, rerender) } }, 'Add endpoint'));
  }
  replace(page, ctx.tabs('webhooks'), header,
    endpoints.data.length
      ? endpoints.data.map((e) => endpointPanel(e, canEdit, rerender))
      : h('p', { class: 'empty' }, 'No endpoints yet.'));
}

function endpointPanel(endpoint, canEdit, rerender) {
  const titleId = uid('endpoint');
  const log = h('div', { class: 'delivery-log' });
  const panel = h('section', { class: 'panel endpoint', 'aria-labelledby': titleId, 'data-url': endpoint.url },
    h('div', { class: 'page-header' },
      h('div', {}, h('h2', { id: titleId, class: 'mono' }, endpoint.url), endpoint.description ? h('p', {}, endpoint.description) : null),
      badge(endpoint.status === 'enabled' ? 'Enabled' : 'Disabled', endpoint.status === 'enabled' ? 'success' : 'neutral')),
    h('dl', { class: 'details' },
      h('dt', {}, 'Events'), h('dd', {}, endpoint.events.join(', ')),
      h('dt', {}, 'Failed attempts in a row'), h('dd', {}, String(endpoint.consecutive_failures)),
      endpoint.disabled_reason ? [h('dt', {}, 'Disabled because'), h('dd', {}, endpoint.disabled_reason)] : null,
      h('dt', {}, 'Created'), h('dd', {}, formatDateTime(endpoint.created_at))));
  const drawLog = async () => {
    const deliveries = (await get(`/webhook-endpoints/${endpoint.id}/deliveries?limit=20`)).data;
    replace(log, h('h3', {}, 'Delivery log'), table({
      caption: `Deliveries to ${endpoint.url}`,
      columns: [
        { label: 'Event', cell: (d) => h('code', {}, d.event_type) },
        { label: 'Status', cell: (d) => badge(d.state[0].toUpperCase() + d.state.slice(1), STATE_KIND[d.state] || 'neutral') },
        { label: 'Attempts', cell: (d) => String(d.attempts) },
        { label: 'Response', cell: (d) => (d.response_status ? `HTTP ${d.response_status}` : d.error || '—') },
        { label: 'Time', cell: (d) => (d.response_time_ms !== null && d.response_time_ms !== undefined ? `${d.response_time_ms} ms` : '—') },
        { label: 'Last attempt', cell: (d) => formatDateTime(d.last_attempt_at || d.created_at) },
      ],
      rows: deliveries,
      empty: 'No deliveries yet.',
    }), h('button', { type: 'button', class: 'button small', on: { click: drawLog } }, 'Refresh log'));
    return deliveries;
  };
  // After a test event, follow its delivery until it is no longer pending (bounded).
  const follow = async (messageId) => {
    for (let i = 0; i < 30 && panel.isConnected; i += 1) {
      const deliveries = await drawLog();
      const sent = deliveries.find((d) => d.message_id === messageId);
      if (sent && sent.state !== 'pending') return;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  };
  if (canEdit) {
    panel.append(h('div', { class: 'actions' },
      actionButton('Send test event', async () => {
        try {
          const delivery = await post(`/webhook-endpoints/${endpoint.id}/test`, undefined, { idempotency: idempotencyKey() });
          toast('Test event queued.');
          await follow(delivery.message_id);
        } catch (err) {
          toast(err.message, 'error');
        }
      }, { ariaLabel: `Send test event to ${endpoint.url}` }),
      actionButton('Rotate secret', async () => {
        const sure = await confirmDialog({
          title: 'Rotate the signing secret?',
          message: 'A new secret is made now. The old one keeps signing deliveries for 24 hours, so you can update your receiver in the meantime.',
          confirmLabel: 'Rotate secret',
        });
        if (!sure) return;
        try {
          const rotated = await post(`/webhook-endpoints/${endpoint.id}/rotate-secret`, undefined, { idempotency: idempotencyKey() });
          const modal = openModal({ title: 'New signing secret' });
          revealOnce(modal, {
            title: 'New signing secret',
            warning: 'This secret is shown only once. Copy it now into your receiver\'s configuration.',
            label: 'Signing secret',
            value: rotated.secret,
            confirmMessage: SECRET_NOT_SHOWN_AGAIN,
          });
        } catch (err) {
          toast(err.message, 'error');
        }
      }, { ariaLabel: `Rotate the signing secret of ${endpoint.url}` }),
      actionButton(endpoint.status === 'enabled' ? 'Disable' : 'Enable', async () => {
        try {
          await patch(`/webhook-endpoints/${endpoint.id}`, { status: endpoint.status === 'enabled' ? 'disabled' : 'enabled' });
          toast(endpoint.status === 'enabled' ? 'Endpoint disabled.' : 'Endpoint enabled.');
          await rerender();
        } catch (err) {
          toast(err.message, 'error');
        }
      }, { ariaLabel: `${endpoint.status === 'enabled' ? 'Disable' : 'Enable'} ${endpoint.url}` })));
  }
  panel.append(log);
  drawLog().catch((err) => replace(log, errorBox(err.message)));
  return panel;
}

function addEndpoint(types, onDone) {
  const modal = openModal({ title: 'Add a webhook endpoint', wide: true });
  const url = h('input', { type: 'url', required: true, placeholder: 'https://example.com/otesse/webhooks', autocomplete: 'off' });
  const description = h('input', { type: 'text', maxlength: '500' });
  const boxes = types.map((t) => {
    const id = uid('event');
    const box = h('input', { type: 'checkbox', id, value: t.name });
    return { box, node: h('div', { class: 'choice' }, box, h('label', { for: id }, h('code', {}, t.name), h('span', { class: 'hint' }, ` — ${t.description}`))) };
  });
  const error = h('div');
  const submit = h('button', { type: 'submit', class: 'button primary', id: 'endpoint-submit' }, 'Add endpoint');
  const form = h('form', { class: 'form', novalidate: true },
    field('Endpoint URL', url, 'HTTPS in production. Private and internal addresses are refused.'),
    field('Description (optional)', description),
    h('fieldset', {}, h('legend', {}, 'Events to send'), boxes.map((b) => b.node)),
    error,
    h('div', { class: 'modal-foot' }, h('button', { type: 'button', class: 'button', on: { click: () => modal.close() } }, 'Cancel'), submit));
  modal.body.append(form);
  modal.focusFirst();
  const requestKey = idempotencyKey();
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (submit.disabled) return;
    replace(error);
    const events = boxes.filter((b) => b.box.checked).map((b) => b.box.value);
    if (!url.value.trim()) {
      error.append(errorBox('Endpoint URL is required.'));
      url.focus();
      return;
    }
    if (events.length === 0) {
      error.append(errorBox('Choose at least one event.'));
      boxes[0].box.focus();
      return;
    }
    submit.disabled = true;
    try {
      const created = await post('/webhook-endpoints', { url: url.value.trim(), events, description: description.value || undefined }, { idempotency: requestKey });
      revealOnce(modal, {
        title: 'Endpoint added',
        warning: 'This signing secret is shown only once. Copy it now: your receiver needs it to verify that deliveries come from Otesse.',
        label: 'Signing secret',
        value: created.secret,
        details: [['URL', created.url], ['Events', created.events.join(', ')]],
        confirmMessage: SECRET_NOT_SHOWN_AGAIN,
        onClosed: onDone,
      });
    } catch (err) {
      submit.disabled = false;
      error.append(errorBox(err instanceof ApiError ? err.message : 'The endpoint could not be added.'));
    }
  });
}
