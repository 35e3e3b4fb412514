/** The detail pane: everything about the selected span. */
import { copyButton, el } from './dom';
import { formatMs, formatTokens, formatUsd } from './format';
import { INode } from './model';
import { isObject, num } from './schema';
import { asMessages, conversation, renderValue, toText } from './values';
import { kindBadge } from './kinds';

function section(title: string, body: HTMLElement, copyText?: () => string, open = true): HTMLElement {
  const summary = el('summary', 'wb-section-title', [el('span', '', title)]);
  if (copyText) {
    summary.appendChild(copyButton(copyText, title.toLowerCase()));
  }
  const details = el('details', `wb-section wb-section-${title.toLowerCase().replace(/\W+/g, '-')}`, [
    summary,
    el('div', 'wb-section-body', [body])
  ]);
  details.open = open;
  return details;
}

function facts(pairs: [string, string][]): HTMLElement {
  const grid = el('div', 'wb-facts');
  for (const [key, value] of pairs) {
    if (value) {
      grid.appendChild(el('div', 'wb-fact-key', key));
      grid.appendChild(el('div', 'wb-fact-value', value));
    }
  }
  return grid;
}

const json = (value: unknown) => JSON.stringify(value, null, 2) ?? '';

/** Inputs of an LLM span: its messages as a conversation, then the rest. */
function inputsView(inputs: unknown, outputs: unknown, isLlm: boolean): HTMLElement {
  const messages = isObject(inputs) ? asMessages(inputs.messages) : asMessages(inputs);
  if (!messages) {
    return renderValue(inputs);
  }
  const wrap = el('div', 'wb-inputs', [conversation(messages, isLlm ? outputs : undefined)]);
  if (isObject(inputs)) {
    const rest = Object.fromEntries(Object.entries(inputs).filter(([key]) => key !== 'messages'));
    if (Object.keys(rest).length) {
      wrap.appendChild(renderValue(rest));
    }
  }
  return wrap;
}

export function renderDetail(node: INode | null, payloadsOmitted: boolean): HTMLElement {
  if (node === null) {
    return el(
      'div',
      'wb-detail-empty',
      'Select a span (click, or arrows and Enter) to see its inputs and outputs.'
    );
  }
  const span = node.span;
  const attrs = span.attributes;
  const isLlm = span.kind === 'llm' || span.kind === 'chat_model';
  const pane = el('div', 'wb-detail-body');
  const title = el('div', 'wb-detail-title', [
    kindBadge(span.kind),
    el('span', 'wb-detail-name', span.name, { title: span.name }),
    el('span', `wb-status wb-status-${span.status.toLowerCase()}`, span.status)
  ]);
  pane.appendChild(title);
  if (span.error) {
    const message = toText(span.error.message);
    pane.appendChild(
      el('div', 'wb-detail-error', [
        el('span', 'wb-error-type', `${span.error.type}: `),
        el('span', 'wb-error-message', message),
        copyButton(() => `${span.error?.type}: ${message}`, 'the error')
      ])
    );
  }
  const tokensIn = num(attrs.prompt_tokens);
  const tokensOut = num(attrs.completion_tokens);
  const pairs: [string, string][] = [
    ['Latency', formatMs(span.durationMs)],
    ['Starts at', `+${formatMs(span.startMs)}`],
    ['Tokens', tokensIn !== null || tokensOut !== null ? `${tokensIn ?? 0} in, ${tokensOut ?? 0} out` : ''],
    ['Cost', attrs.cost_usd === null && isLlm ? 'unknown (no price: see set_price)' : formatUsd(node.ownCost)]
  ];
  if (node.children.length) {
    pairs.push([
      'With children',
      [formatTokens(node.tokens) && `${formatTokens(node.tokens)} tokens`, formatUsd(node.cost)]
        .filter(Boolean)
        .join(', ')
    ]);
  }
  if (typeof attrs.model_used === 'string' && attrs.model_used !== span.name) {
    pairs.push(['Answered by', attrs.model_used]);
  }
  if (attrs.fell_back === true) {
    pairs.push(['Fallback', 'yes: the model asked for failed, another answered']);
  }
  const failed = num(attrs.failed_attempts);
  if (failed) {
    pairs.push(['Failed attempts', `${failed}`]);
  }
  if (attrs.cache_hit === true) {
    pairs.push(['Cache', 'hit (free)']);
  }
  pairs.push(['Span id', span.id]);
  pane.appendChild(facts(pairs));
  if (payloadsOmitted) {
    pane.appendChild(
      el(
        'div',
        'wb-note',
        'Inputs and outputs were left out of this notebook to keep it small; the full trace is in MLflow.'
      )
    );
  }
  if (span.inputs !== null) {
    pane.appendChild(
      section(
        isLlm && asMessagesIn(span.inputs) ? 'Conversation' : 'Inputs',
        inputsView(span.inputs, span.outputs, isLlm),
        () => json(span.inputs)
      )
    );
  }
  if (span.outputs !== null) {
    pane.appendChild(section('Outputs', renderValue(span.outputs), () => toText(span.outputs)));
  }
  if (Object.keys(attrs).length) {
    pane.appendChild(section('Attributes', renderValue(attrs), () => json(attrs), false));
  }
  if (span.events !== null) {
    pane.appendChild(section('Events', renderValue(span.events), () => json(span.events), false));
  }
  const raw = el('pre', 'wb-raw', json(rawSpan(node)));
  pane.appendChild(section('Raw JSON', raw, () => raw.textContent ?? '', false));
  return pane;
}

function asMessagesIn(inputs: unknown): boolean {
  return (isObject(inputs) ? asMessages(inputs.messages) : asMessages(inputs)) !== null;
}

/** The span as the payload has it (snake_case, as in docs/trace-schema.md). */
function rawSpan(node: INode): Record<string, unknown> {
  const s = node.span;
  return {
    id: s.id,
    parent_id: s.parentId,
    depth: node.depth,
    name: s.name,
    kind: s.kind,
    start_ms: s.startMs,
    duration_ms: s.durationMs,
    status: s.status,
    error: s.error,
    inputs: s.inputs,
    outputs: s.outputs,
    attributes: s.attributes
  };
}
