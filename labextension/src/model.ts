/**
 * The span tree behind the view: nesting, roll-ups, error paths, what is open, filters and search.
 *
 * Everything is computed once per payload in O(spans); the list of visible rows is recomputed when
 * something opens, closes or filters, which stays cheap for thousands of spans because the DOM only
 * ever holds the rows on screen (see tree.ts).
 */
import { ISpan, ITrace, asTruncated, num } from './schema';

export interface INode {
  span: ISpan;
  index: number;
  parent: INode | null;
  children: INode[];
  depth: number;
  /** tokens and cost of this span alone (LLM spans carry them) */
  ownTokens: number;
  ownCost: number | null;
  /** this span and everything under it */
  tokens: number;
  cost: number | null;
  /** failed spans under this one (not counting itself) */
  errorsBelow: number;
  /** a failed try of an LLM call that was retried or fell back */
  attempt: boolean;
}

export interface IRow {
  node: INode;
  /** shown only because something under it matches the filter */
  context: boolean;
}

const EXPAND_ALL_UP_TO = 300; // spans; bigger traces open two levels and the paths to errors

function addCost(a: number | null, b: number | null): number | null {
  return a === null ? b : b === null ? a : a + b;
}

export class TraceModel {
  readonly nodes: INode[] = [];
  readonly roots: INode[] = [];
  readonly kinds: string[];
  readonly expanded = new Set<INode>();
  kindFilter = '';
  statusFilter = '';
  private searchTexts: string[] | null = null;

  constructor(readonly trace: ITrace) {
    const byId = new Map<string, INode>();
    trace.spans.forEach((span, index) => {
      const attrs = span.attributes;
      const tokens = (num(attrs.prompt_tokens) ?? 0) + (num(attrs.completion_tokens) ?? 0);
      const cost = num(attrs.cost_usd);
      // spans come in depth-first pre-order, so a parent is always known before its children
      const parent = span.parentId !== null ? (byId.get(span.parentId) ?? null) : null;
      const node: INode = {
        span,
        index,
        parent,
        children: [],
        depth: parent ? parent.depth + 1 : 0,
        ownTokens: tokens,
        ownCost: cost,
        tokens,
        cost,
        errorsBelow: 0,
        // the Python side marks each failed try of a call with its number (tracing/recorder.py)
        attempt: span.status === 'ERROR' && num(attrs.attempt) !== null
      };
      (parent ? parent.children : this.roots).push(node);
      if (!byId.has(span.id)) {
        byId.set(span.id, node);
      }
      this.nodes.push(node);
    });
    for (let i = this.nodes.length - 1; i >= 0; i--) {
      const node = this.nodes[i];
      const parent = node.parent;
      if (parent) {
        parent.tokens += node.tokens;
        parent.cost = addCost(parent.cost, node.cost);
        parent.errorsBelow += node.errorsBelow + (node.span.status === 'ERROR' ? 1 : 0);
      }
    }
    this.kinds = [...new Set(this.nodes.map(n => n.span.kind))].sort();
    this.expandDefault();
  }

  get size(): number {
    return this.nodes.length;
  }

  /** Small traces open fully; big ones two levels deep plus every path to a failure. */
  expandDefault(): void {
    this.expanded.clear();
    const all = this.nodes.length <= EXPAND_ALL_UP_TO;
    for (const node of this.nodes) {
      if (node.children.length && (all || node.depth < 2 || node.errorsBelow > 0)) {
        this.expanded.add(node);
      }
    }
  }

  expandAll(): void {
    for (const node of this.nodes) {
      if (node.children.length) {
        this.expanded.add(node);
      }
    }
  }

  collapseAll(): void {
    this.expanded.clear();
  }

  /** Open every ancestor so the node gets a row. */
  reveal(node: INode): void {
    for (let up = node.parent; up; up = up.parent) {
      this.expanded.add(up);
    }
  }

  get filtering(): boolean {
    return this.kindFilter !== '' || this.statusFilter !== '';
  }

  passes(node: INode): boolean {
    const span = node.span;
    return (
      (this.kindFilter === '' || span.kind === this.kindFilter) &&
      (this.statusFilter === '' || span.status === this.statusFilter)
    );
  }

  /** The rows to draw, in order: open nodes only; with a filter, matches plus their ancestors. */
  visibleRows(): IRow[] {
    let keep: boolean[] | null = null;
    if (this.filtering) {
      keep = this.nodes.map(n => this.passes(n));
      for (let i = this.nodes.length - 1; i >= 0; i--) {
        const parent = this.nodes[i].parent;
        if (keep[i] && parent) {
          keep[parent.index] = true;
        }
      }
    }
    const rows: IRow[] = [];
    const stack: INode[] = [...this.roots].reverse();
    while (stack.length) {
      const node = stack.pop()!;
      if (keep && !keep[node.index]) {
        continue;
      }
      rows.push({ node, context: keep !== null && !this.passes(node) });
      if (this.expanded.has(node)) {
        for (let i = node.children.length - 1; i >= 0; i--) {
          stack.push(node.children[i]);
        }
      }
    }
    return rows;
  }

  /** Spans whose name, kind, status, error or payload contain the query (case-insensitive). */
  search(query: string): INode[] {
    const needle = query.trim().toLowerCase();
    if (!needle) {
      return [];
    }
    const texts = (this.searchTexts ??= this.nodes.map(n => searchText(n.span)));
    return this.nodes.filter((n, i) => texts[i].includes(needle) && (!this.filtering || this.passes(n)));
  }
}

function flatten(value: unknown, out: string[], depth = 0): void {
  if (value === null || value === undefined || depth > 12) {
    return;
  }
  if (typeof value === 'string') {
    out.push(value);
    return;
  }
  if (typeof value !== 'object') {
    out.push(String(value));
    return;
  }
  const cut = asTruncated(value);
  if (cut) {
    out.push(cut.preview);
    return;
  }
  for (const [key, item] of Object.entries(value as object)) {
    if (!Array.isArray(value)) {
      out.push(key);
    }
    flatten(item, out, depth + 1);
  }
}

function searchText(span: ISpan): string {
  const parts = [span.name, span.kind, span.status, span.id];
  if (span.error) {
    parts.push(span.error.type);
    flatten(span.error.message, parts);
  }
  flatten(span.inputs, parts);
  flatten(span.outputs, parts);
  flatten(span.attributes, parts);
  return parts.join('\n').toLowerCase();
}
