/** One short label and colour per span kind: the tree's "icons" (text, so they need no icon font). */
import { el } from './dom';

const LABELS: Record<string, string> = {
  llm: 'LLM',
  chat_model: 'CHAT',
  chain: 'CHAIN',
  agent: 'AGENT',
  tool: 'TOOL',
  retriever: 'RETR',
  parser: 'PARSE',
  embedding: 'EMBED',
  reranker: 'RANK',
  memory: 'MEM',
  workflow: 'FLOW',
  task: 'TASK',
  guardrail: 'GUARD',
  evaluator: 'EVAL',
  unknown: 'SPAN'
};

const known = (kind: string) => Object.prototype.hasOwnProperty.call(LABELS, kind);

export function kindLabel(kind: string): string {
  return known(kind) ? LABELS[kind] : 'SPAN';
}

/** The class carries the kind only when it is a known one (never text from the payload). */
export function kindClass(kind: string): string {
  return known(kind) ? `wb-kind-${kind}` : 'wb-kind-unknown';
}

export function kindBadge(kind: string): HTMLElement {
  return el('span', `wb-kind ${kindClass(kind)}`, kindLabel(kind), { title: kind });
}
