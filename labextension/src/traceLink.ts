/**
 * The footer under a `%%llm` answer ends in `%trace tr-…`: a click opens that trace. It puts a
 * `%trace tr-…` cell under the answer's cell and runs it (or runs the one already there), so the tree lands
 * in the notebook like any other output: saved with it, and readable where the extension is not.
 */
import { INotebookTracker, Notebook, NotebookActions, NotebookPanel } from '@jupyterlab/notebook';

const TRACE_ID = /^tr-[0-9a-f]{8,64}$/;

export function traceIdOf(link: Element): string | null {
  const id = (link.textContent ?? '').trim().replace(/^%trace\s+/, '');
  return TRACE_ID.test(id) ? id : null;
}

async function openTrace(panel: NotebookPanel, link: Element, traceId: string): Promise<void> {
  const notebook: Notebook = panel.content;
  const index = notebook.widgets.findIndex(cell => cell.node.contains(link));
  if (index < 0) {
    return;
  }
  const source = `%trace ${traceId}`;
  const next = notebook.widgets[index + 1];
  notebook.deselectAll();
  if (next && next.model.type === 'code' && next.model.sharedModel.getSource().trim() === source) {
    notebook.activeCellIndex = index + 1; // already asked for: run it again rather than add another
  } else {
    notebook.activeCellIndex = index;
    NotebookActions.insertBelow(notebook);
    notebook.activeCell?.model.sharedModel.setSource(source);
  }
  notebook.mode = 'command';
  await NotebookActions.run(notebook, panel.sessionContext);
}

/** Listen for clicks on `.wb-trace-link` in every notebook the tracker knows. */
export function addTraceLinks(tracker: INotebookTracker): void {
  tracker.widgetAdded.connect((_, panel) => {
    panel.content.node.addEventListener('click', event => {
      const link = (event.target as Element | null)?.closest?.('.wb-trace-link');
      const traceId = link ? traceIdOf(link) : null;
      if (!link || !traceId) {
        return;
      }
      event.preventDefault();
      event.stopPropagation();
      void openTrace(panel, link, traceId);
    });
  });
}
