/**
 * The rich trace view: a MIME renderer for `application/vnd.workbench.trace+json`.
 *
 * It is declared `safe` (outputs of untrusted notebooks render too) and earns it: payload text only ever
 * reaches the DOM as textContent, and it makes no network requests.
 */
import { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { Widget } from '@lumino/widgets';
import { copyButton, el } from './dom';
import { formatCount, formatMs, formatTokens, formatUsd } from './format';
import { INode, TraceModel } from './model';
import { ITrace, parseBundle } from './schema';
import { SpanTree } from './tree';
import { Toolbar } from './toolbar';
import { renderDetail } from './detail';
import { renderFallback } from './fallback';
import { COLUMN_GAP_PX, IColumns, TIMELINE_MIN_PX, columnWidths, divider, nameWidth, treeWidth } from './layout';

const COMPACT_BELOW_PX = 720; // narrower than this: detail under the tree, fewer columns

export class TraceRenderer extends Widget implements IRenderMime.IRenderer {
  private model: TraceModel | null = null;
  private tree: SpanTree | null = null;
  private toolbar: Toolbar | null = null;
  private detail: HTMLElement | null = null;
  private query = '';
  private matchList: INode[] = [];
  private matchAt = -1;
  private resize: ResizeObserver | null = null;
  private body: HTMLElement | null = null;
  private treePane: HTMLElement | null = null;
  private columns: IColumns | null = null;
  private namePx = 0; // measured once the view is on the page (fonts known)
  private numbersPx = 0;

  constructor(private readonly options: IRenderMime.IRendererOptions) {
    super();
    this.addClass('wb-traceview');
    this.node.dataset.mimeType = options.mimeType; // as JupyterLab's own renderers mark theirs
    this.resize = new ResizeObserver(entries => {
      const width = entries[0]?.contentRect.width ?? 0;
      if (width > 0) {
        this.toggleClass('wb-compact', width < COMPACT_BELOW_PX);
        this.fitTree();
        this.tree?.draw();
      }
    });
    this.resize.observe(this.node);
  }

  dispose(): void {
    this.resize?.disconnect();
    this.resize = null;
    super.dispose();
  }

  async renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    const started = performance.now();
    const parsed = parseBundle(model.data[this.options.mimeType]);
    this.node.replaceChildren();
    if ('reason' in parsed) {
      await renderFallback(this.node, model, parsed.reason, this.options);
      return;
    }
    this.build(parsed.trace);
    // the first paint after this frame: what the benchmark reads (bench/bench_extension.py)
    requestAnimationFrame(() =>
      setTimeout(
        () => this.node.setAttribute('data-wb-render-ms', (performance.now() - started).toFixed(1)),
        0
      )
    );
  }

  private build(trace: ITrace): void {
    const model = (this.model = new TraceModel(trace));
    this.tree = new SpanTree(model, { select: node => this.showDetail(node) });
    this.toolbar = new Toolbar(model.kinds, {
      search: (query, step) => this.search(query, step),
      filter: (kind, status) => {
        model.kindFilter = kind;
        model.statusFilter = status;
        if (model.filtering) {
          model.nodes.filter(n => model.passes(n)).forEach(n => model.reveal(n));
        }
        this.tree?.refresh();
        this.search(this.query, 0);
      },
      expandAll: () => {
        model.expandAll();
        this.tree?.refresh();
      },
      collapseAll: () => {
        model.collapseAll();
        this.tree?.refresh();
      }
    });
    this.detail = el('div', 'wb-detail', [], { 'aria-label': 'Selected span', role: 'region' });
    const columns = (this.columns = columnWidths(model));
    this.node.style.setProperty('--wb-latency-width', columns.latency);
    this.node.style.setProperty('--wb-tokens-width', columns.tokens);
    this.node.style.setProperty('--wb-cost-width', columns.cost);
    this.namePx = 0;
    const header = el('div', 'wb-tree-header', [
      el('div', 'wb-cell wb-cell-name', 'Span'),
      el('div', 'wb-cell wb-num wb-latency', 'Latency'),
      el('div', 'wb-cell wb-num wb-tokens', 'Tokens'),
      el('div', 'wb-cell wb-num wb-cost', 'Cost'),
      el('div', 'wb-cell wb-timeline wb-axis', [
        el('span', '', '0'),
        el('span', '', formatMs(trace.durationMs))
      ])
    ]);
    this.treePane = el('div', 'wb-tree-pane', [header, this.tree.node]);
    const body: HTMLElement = (this.body = el('div', 'wb-body', [
      this.treePane,
      divider(
        (): HTMLElement => body,
        px => this.placeTree(px, false),
        () => this.fitTree()
      ),
      this.detail
    ]));
    this.node.append(this.summary(trace), this.toolbar.node, body);
    this.tree.refresh();
    const first = model.nodes.find(n => n.span.status === 'ERROR' && !n.attempt) ?? model.roots[0] ?? null;
    if (first) {
      this.tree.focusNode(first, true);
    } else {
      this.showDetail(null);
    }
  }

  /** The list's width beside the detail pane (see layout.ts); stacked when both do not fit. */
  private fitTree(): void {
    const body = this.body;
    const model = this.model;
    if (!body || !model || !this.columns || !body.isConnected) {
      return;
    }
    if (this.hasClass('wb-compact')) {
      this.placeTree(0, true);
      return;
    }
    if (!this.namePx) {
      const name = body.querySelector('.wb-name') ?? body;
      const badge = body.querySelector('.wb-kind') ?? body;
      this.namePx = nameWidth(model, getComputedStyle(name).font, getComputedStyle(badge).font);
      // the number columns as drawn (their widths are fixed by the values, see layout.ts)
      this.numbersPx = ['.wb-latency', '.wb-tokens', '.wb-cost']
        .map(c => (body.querySelector(`.wb-tree-header ${c}`) as HTMLElement | null)?.offsetWidth ?? 0)
        .reduce((a, b) => a + b, 0);
    }
    const { px, stacked } = treeWidth(body.clientWidth, this.namePx, this.numbersPx);
    this.placeTree(px, stacked);
  }

  private placeTree(px: number, stacked: boolean): void {
    this.toggleClass('wb-stacked', stacked);
    const compact = this.hasClass('wb-compact');
    if (this.treePane) {
      this.treePane.style.flex = stacked ? '' : `0 0 ${px}px`;
    }
    // the name column keeps what its longest name needs, as far as the list's width allows
    const pane = stacked ? (this.body?.clientWidth ?? 0) : px;
    const room = pane - this.numbersPx - TIMELINE_MIN_PX - 4 * COLUMN_GAP_PX - 4;
    this.node.style.setProperty('--wb-name-min', compact ? '0px' : `${Math.max(0, Math.min(this.namePx, room))}px`);
    this.tree?.draw(true);
  }

  private summary(trace: ITrace): HTMLElement {
    const totals = trace.totals;
    const errors = totals?.errors ?? trace.spans.filter(s => s.status === 'ERROR').length;
    const parts = [
      formatMs(trace.durationMs),
      formatCount(trace.spans.length, 'span'),
      totals
        ? formatCount(totals.llmCalls, 'LLM call') + (totals.llmFailed ? `, ${totals.llmFailed} failed` : '')
        : '',
      totals && totals.promptTokens + totals.completionTokens
        ? `${formatTokens(totals.promptTokens + totals.completionTokens)} tokens (${totals.promptTokens} in, ${totals.completionTokens} out)`
        : '',
      totals?.costUsd !== null && totals?.costUsd !== undefined ? formatUsd(totals.costUsd) : ''
    ].filter(Boolean);
    const notes: string[] = [];
    if (trace.limits.spansOmitted) {
      notes.push(`${formatCount(trace.limits.spansOmitted, 'span')} left out to keep the notebook small`);
    }
    if (trace.limits.payloadsOmitted) {
      notes.push('inputs and outputs left out to keep the notebook small');
    } else if (trace.limits.reduced && trace.limits.textChars) {
      notes.push(`long text cut to ${trace.limits.textChars} characters`);
    }
    const tags = Object.entries(trace.tags).map(([k, v]) => `${k}=${String(v)}`);
    return el('div', 'wb-summary', [
      el('span', `wb-status wb-status-${trace.status.toLowerCase()}`, trace.status),
      el('span', 'wb-trace-name', trace.name),
      el('span', 'wb-trace-facts', parts.join(' · ')),
      errors ? el('span', 'wb-trace-errors', formatCount(errors, 'failed span')) : null,
      tags.length ? el('span', 'wb-trace-tags', tags.join(' ')) : null,
      trace.traceId
        ? el('span', 'wb-trace-id-group', [
            el('span', 'wb-trace-id', trace.traceId, { title: 'MLflow trace id' }),
            copyButton(() => trace.traceId, 'the trace id')
          ])
        : null,
      notes.length ? el('div', 'wb-note', notes.join('; ')) : null
    ]);
  }

  private showDetail(node: INode | null): void {
    this.detail?.replaceChildren(renderDetail(node, this.model?.trace.limits.payloadsOmitted ?? false));
  }

  /** step 0: a new query (first match); +1/-1: next/previous match. */
  private search(query: string, step: number): void {
    const model = this.model;
    const tree = this.tree;
    if (!model || !tree || !this.toolbar) {
      return;
    }
    if (query !== this.query || step === 0) {
      this.query = query;
      this.matchList = model.search(query);
      this.matchAt = this.matchList.length ? 0 : -1;
    } else if (this.matchList.length) {
      this.matchAt = (this.matchAt + step + this.matchList.length) % this.matchList.length;
    }
    tree.matches = new Set(this.matchList);
    const current = this.matchAt >= 0 ? this.matchList[this.matchAt] : null;
    tree.currentMatch = current;
    this.toolbar.setCount(this.matchAt + 1, this.matchList.length, query);
    if (current) {
      tree.focusNode(current, true);
    } else {
      tree.draw(true);
    }
  }
}
