/** "Workbench: Open MLflow UI": starts (or reuses) the UI for the kernel's store and opens it in a tab. */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { ICommandPalette, showErrorMessage } from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { MLFLOW_EXPRESSION, evaluateJson } from './kernel';

export const OPEN_MLFLOW = 'workbench:open-mlflow-ui';

export function addMlflowCommand(
  app: JupyterFrontEnd,
  tracker: INotebookTracker,
  palette: ICommandPalette | null
): void {
  app.commands.addCommand(OPEN_MLFLOW, {
    label: 'Workbench: Open MLflow UI',
    caption: "Start the MLflow UI for this notebook's Workbench store and open it",
    isEnabled: () => tracker.currentWidget?.sessionContext.session?.kernel != null,
    execute: async () => {
      const kernel = tracker.currentWidget?.sessionContext.session?.kernel;
      if (!kernel) {
        await showErrorMessage('MLflow UI', 'Open a notebook whose kernel has Workbench installed first.');
        return;
      }
      // open the tab now, inside the click, or the browser's popup blocker refuses it after the await
      const tab = window.open('', '_blank');
      try {
        const answer = (await evaluateJson(kernel, MLFLOW_EXPRESSION)) as { url?: string; error?: string } | null;
        if (!answer?.url || !/^https?:\/\//.test(answer.url)) {
          throw new Error(answer?.error ?? 'the kernel gave no address');
        }
        if (tab) {
          tab.opener = null;
          tab.location.href = answer.url;
        } else {
          window.open(answer.url, '_blank', 'noopener');
        }
      } catch (error) {
        tab?.close();
        await showErrorMessage(
          'MLflow UI',
          `The MLflow UI could not be started: ${(error as Error).message}`
        );
      }
    }
  });
  palette?.addItem({ command: OPEN_MLFLOW, category: 'Workbench' });
}
