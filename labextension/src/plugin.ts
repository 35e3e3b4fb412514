/** The app plugins: the spend item in the status bar, the MLflow UI command, the footer's trace link. */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { IStatusBar } from '@jupyterlab/statusbar';
import { addMlflowCommand } from './mlflow';
import { SpendStatus } from './status';
import { addTraceLinks } from './traceLink';

const statusPlugin: JupyterFrontEndPlugin<void> = {
  id: 'llmops-workbench:spend-status',
  description: "This kernel's LLM spend, call count and budget in the status bar.",
  autoStart: true,
  requires: [INotebookTracker],
  optional: [IStatusBar],
  activate: (_app: JupyterFrontEnd, tracker: INotebookTracker, statusBar: IStatusBar | null) => {
    if (!statusBar) {
      return;
    }
    statusBar.registerStatusItem('llmops-workbench:spend', {
      item: new SpendStatus(tracker),
      align: 'left',
      rank: 4,
      isActive: () => tracker.currentWidget !== null && tracker.currentWidget === _app.shell.currentWidget
    });
  }
};

const mlflowPlugin: JupyterFrontEndPlugin<void> = {
  id: 'llmops-workbench:mlflow-ui',
  description: 'A command (and palette entry) that opens the MLflow UI for the current store.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ICommandPalette],
  activate: (app: JupyterFrontEnd, tracker: INotebookTracker, palette: ICommandPalette | null) => {
    addMlflowCommand(app, tracker, palette);
  }
};

const traceLinkPlugin: JupyterFrontEndPlugin<void> = {
  id: 'llmops-workbench:trace-link',
  description: "A click on the footer's `%trace tr-…` opens that trace under the answer.",
  autoStart: true,
  requires: [INotebookTracker],
  activate: (_app: JupyterFrontEnd, tracker: INotebookTracker) => {
    addTraceLinks(tracker);
  }
};

export default [statusPlugin, mlflowPlugin, traceLinkPlugin];
