/**
 * The status bar item: this kernel's LLM spend and call count, and the budget when one is set.
 *
 * It asks the kernel (kernel.ts) when a `%%llm` output arrives (its display metadata carries a
 * `workbench` entry), once the kernel is idle again, and when the current notebook or its kernel
 * changes. Kernels without Workbench loaded answer null and the item hides.
 */
import { ISessionContext } from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { Kernel, KernelMessage } from '@jupyterlab/services';
import { Widget } from '@lumino/widgets';
import { el } from './dom';
import { formatCount, formatUsd } from './format';
import { STATUS_EXPRESSION, evaluateJson } from './kernel';

interface IBudget {
  scope: string;
  usd: number;
  spent_usd: number;
  left_usd: number;
}

export interface IStatus {
  calls: number;
  cost_usd: number;
  unpriced: number;
  budget: IBudget | null;
}

const OUTPUT_TYPES = new Set(['display_data', 'update_display_data', 'execute_result']);

export function statusText(status: IStatus): string {
  // "this kernel": `%llm spend` counts every notebook sharing the home; this item only the current kernel
  let text = `this kernel: LLM ${formatUsd(status.cost_usd)} · ${formatCount(status.calls, 'call')}`;
  if (status.budget) {
    const scope = status.budget.scope === 'global' ? '' : ` (${status.budget.scope})`;
    text += ` · budget ${formatUsd(status.budget.spent_usd)} of ${formatUsd(status.budget.usd)}${scope}`;
  }
  return text;
}

export class SpendStatus extends Widget {
  private context: ISessionContext | null = null;
  private kernel: Kernel.IKernelConnection | null = null;
  private dirty = false;
  private asking = false;

  constructor(private readonly tracker: INotebookTracker) {
    super();
    this.addClass('wb-spend-status');
    this.node.setAttribute('data-wb-status', 'hidden');
    this.hide();
    tracker.currentChanged.connect(() => this.follow(), this);
    this.follow();
  }

  /** Follow the current notebook's session and kernel. */
  private follow(): void {
    const context = this.tracker.currentWidget?.sessionContext ?? null;
    if (context === this.context) {
      return;
    }
    this.context?.kernelChanged.disconnect(this.onKernel, this);
    this.context?.statusChanged.disconnect(this.onStatus, this);
    this.context = context;
    context?.kernelChanged.connect(this.onKernel, this);
    context?.statusChanged.connect(this.onStatus, this);
    this.watch(context?.session?.kernel ?? null);
  }

  private onKernel(): void {
    this.watch(this.context?.session?.kernel ?? null);
  }

  private watch(kernel: Kernel.IKernelConnection | null): void {
    this.kernel?.iopubMessage.disconnect(this.onIopub, this);
    this.kernel = kernel;
    kernel?.iopubMessage.connect(this.onIopub, this);
    this.render(null);
    this.dirty = kernel !== null;
    this.askWhenIdle();
  }

  private onIopub(_: Kernel.IKernelConnection, msg: KernelMessage.IIOPubMessage): void {
    if (!OUTPUT_TYPES.has(msg.header.msg_type)) {
      return;
    }
    const metadata = (msg.content as { metadata?: Record<string, unknown> }).metadata;
    if (metadata && typeof metadata === 'object' && 'workbench' in metadata) {
      this.dirty = true;
      this.askWhenIdle();
    }
  }

  private onStatus(_: ISessionContext, status: Kernel.Status): void {
    if (status === 'restarting' || status === 'autorestarting' || status === 'dead' || status === 'unknown') {
      // a restarted kernel has counted nothing yet (and may not load Workbench at all): ask again when idle
      this.render(null);
      this.dirty = true;
    } else if (status === 'idle') {
      this.askWhenIdle();
    }
  }

  /** One question at a time, and only while the kernel is idle (a question would wait behind a cell). */
  private askWhenIdle(): void {
    const kernel = this.kernel;
    if (!this.dirty || this.asking || !kernel || kernel.status !== 'idle') {
      return;
    }
    this.dirty = false;
    this.asking = true;
    evaluateJson(kernel, STATUS_EXPRESSION)
      .then(
        value => {
          if (kernel === this.kernel) {
            this.render(value as IStatus | null);
          }
        },
        () => undefined // workbench not installed in this kernel: stay hidden
      )
      .finally(() => {
        this.asking = false;
        if (this.dirty) {
          this.askWhenIdle();
        }
      });
  }

  private render(status: IStatus | null): void {
    if (!status || typeof status.calls !== 'number') {
      this.node.setAttribute('data-wb-status', 'hidden');
      this.hide();
      return;
    }
    const over = status.budget ? status.budget.left_usd <= 0 : false;
    this.node.replaceChildren(el('span', 'wb-spend-text', statusText(status)));
    this.node.title =
      `Workbench: this kernel's LLM calls and their cost since it started (%llm spend: every notebook sharing the home)` +
      (status.unpriced ? ` (${status.unpriced} with no known price)` : '') +
      (status.budget ? `; budget ${status.budget.scope}: ${formatUsd(status.budget.left_usd)} left` : '');
    this.node.classList.toggle('wb-over-budget', over);
    this.node.setAttribute('data-wb-status', 'shown');
    this.show();
  }
}
