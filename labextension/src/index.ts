/** The plugins of jupyter_condasvc: wiring only. */
import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, Notification, ToolbarButton } from '@jupyterlab/apputils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import type { DocumentRegistry } from '@jupyterlab/docregistry';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { IMainMenu } from '@jupyterlab/mainmenu';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';
import type { IDisposable } from '@lumino/disposable';

import { CondaSvcAPI } from './api';
import { ISettingsValues, registerCommands } from './commands';
import { failureToasts } from './failures';
import { hostOf, serviceLabel } from './hosts';
import { servicesIcon } from './icons';
import { ServicesModel } from './model';
import { CommandIDs, IService, IServicesModel } from './tokens';
import { ServicesPanel } from './widgets/sidebar';
import { ServicesStatus } from './widgets/statusbar';

const PLUGIN_ID = 'jupyter_condasvc:plugin';
const CATEGORY = 'Services';

const DEFAULTS: ISettingsValues = {
  notifyOnFailure: true,
  logInitialLines: 1000,
  wrapLogs: false,
  startAfterCreate: true
};

const plugin: JupyterFrontEndPlugin<IServicesModel> = {
  id: PLUGIN_ID,
  description: 'Conda-environment notebooks, scripts and commands as systemd user services.',
  autoStart: true,
  provides: IServicesModel,
  optional: [
    ITranslator,
    ISettingRegistry,
    ICommandPalette,
    ILayoutRestorer,
    IStatusBar,
    IMainMenu,
    INotebookTracker,
    IDocumentManager,
    IDefaultFileBrowser
  ],
  activate: (
    app: JupyterFrontEnd,
    translator: ITranslator | null,
    settingRegistry: ISettingRegistry | null,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    statusBar: IStatusBar | null,
    mainMenu: IMainMenu | null,
    notebooks: INotebookTracker | null,
    docManager: IDocumentManager | null,
    fileBrowser: IDefaultFileBrowser | null
  ): IServicesModel => {
    const trans = (translator ?? nullTranslator).load('jupyter_condasvc');
    const api = new CondaSvcAPI(app.serviceManager.serverSettings);
    const model = new ServicesModel({ connect: () => api.openEvents(), fetchHost: () => api.host() });
    let settings: ISettingsValues = { ...DEFAULTS };
    let showStatus = true;

    const panel = new ServicesPanel({ model, commands: app.commands, trans });
    app.shell.add(panel, 'left', { rank: 450 });
    restorer?.add(panel, 'jp-condasvc-panel');

    registerCommands({
      app,
      api,
      model,
      trans,
      panelId: panel.id,
      settings: () => settings,
      docManager,
      notebooks,
      fileBrowser
    });

    if (settingRegistry) {
      void settingRegistry
        .load(PLUGIN_ID)
        .then(s => {
          const read = () => {
            settings = { ...DEFAULTS, ...(s.composite as Partial<ISettingsValues>) };
            showStatus = (s.composite.showStatusBarItem as boolean | undefined) ?? true;
            statusItem?.update();
          };
          read();
          s.changed.connect(read);
        })
        .catch(() => undefined);
    }

    // One toast per failure episode (the model decides), and one toast for many services failing together.
    let pendingFailures: IService[] = [];
    let flushTimer: number | null = null;
    const showLogs = (ref: { name: string; host: string }) => ({
      label: trans.__('Show logs'),
      callback: () => void app.commands.execute(CommandIDs.showLogs, ref)
    });
    const flushFailures = () => {
      flushTimer = null;
      const toasts = failureToasts(pendingFailures);
      pendingFailures = [];
      const group = toasts.find(t => t.kind === 'group');
      if (group && group.kind === 'group') {
        const names = group.names;
        Notification.error(
          trans.__(
            '%1 services failed: %2',
            names.length,
            names.slice(0, 5).join(', ') + (names.length > 5 ? ', …' : '')
          ),
          {
            autoClose: false,
            actions: [
              { label: trans.__('Show services'), callback: () => void app.commands.execute(CommandIDs.openPanel) }
            ]
          }
        );
        return;
      }
      for (const toast of toasts) {
        if (toast.kind !== 'single') {
          continue;
        }
        const service = toast.service;
        const status = service.status;
        const ref = { name: service.name, host: hostOf(service) };
        const name = serviceLabel(ref.name, ref.host);
        if (status.start_limit_hit) {
          Notification.error(
            trans.__('Service %1 kept crashing and was stopped at its start limit (%2).', name, status.result ?? '?'),
            {
              autoClose: false,
              actions: [
                showLogs(ref),
                {
                  label: trans.__('Reset and start'),
                  callback: () => void app.commands.execute(CommandIDs.resetAndStartService, ref)
                }
              ]
            }
          );
        } else if (status.crash_looping) {
          Notification.warning(trans.__('Service %1 is crash-looping: it keeps restarting.', name), {
            autoClose: false,
            actions: [showLogs(ref)]
          });
        } else {
          Notification.error(
            status.result
              ? trans.__('Service %1 failed (%2).', name, status.result)
              : trans.__('Service %1 failed.', name),
            { autoClose: false, actions: [showLogs(ref)] }
          );
        }
      }
    };
    model.serviceFailed.connect((_, service) => {
      if (!settings.notifyOnFailure) {
        return;
      }
      pendingFailures.push(service);
      if (flushTimer === null) {
        flushTimer = window.setTimeout(flushFailures, 1500);
      }
    });

    let statusItem: ServicesStatus | null = null;
    if (statusBar) {
      statusItem = new ServicesStatus({
        model,
        trans,
        onClick: () => void app.commands.execute(CommandIDs.openPanel)
      });
      statusBar.registerStatusItem('jupyter_condasvc:status', {
        item: statusItem,
        align: 'left',
        rank: 50,
        isActive: () => showStatus,
        activeStateChanged: model.changed
      });
    }

    if (palette) {
      const ids = [
        CommandIDs.openPanel,
        CommandIDs.newService,
        CommandIDs.openService,
        CommandIDs.editService,
        CommandIDs.startService,
        CommandIDs.stopService,
        CommandIDs.restartService,
        CommandIDs.resetFailedService,
        CommandIDs.resetAndStartService,
        CommandIDs.pauseService,
        CommandIDs.resumeService,
        CommandIDs.runNowService,
        CommandIDs.enableService,
        CommandIDs.disableService,
        CommandIDs.deleteService,
        CommandIDs.exportSpec,
        CommandIDs.importSpec,
        CommandIDs.showLogs,
        CommandIDs.openOutput,
        CommandIDs.runAsService,
        CommandIDs.refreshHost,
        CommandIDs.enableLinger
      ];
      for (const command of ids) {
        palette.addItem({ command, category: trans.__(CATEGORY), args: { isPalette: true } });
      }
    }

    if (mainMenu) {
      mainMenu.runMenu.addGroup([{ command: CommandIDs.runAsService }, { command: CommandIDs.newService }], 100);
    }

    app.contextMenu.addItem({
      command: CommandIDs.runFileAsService,
      selector: '.jp-DirListing-item[data-file-type="notebook"]',
      rank: 20
    });
    app.contextMenu.addItem({
      command: CommandIDs.runFileAsService,
      selector: '.jp-DirListing-item[data-file-type="python"]',
      rank: 20
    });

    // A toolbar button on every notebook.
    app.docRegistry.addWidgetExtension('Notebook', {
      createNew: (
        nbPanel: NotebookPanel,
        _context: DocumentRegistry.IContext<DocumentRegistry.IModel>
      ): IDisposable => {
        const button = new ToolbarButton({
          icon: servicesIcon,
          className: 'jp-condasvc-run-as-service',
          tooltip: trans.__('Run as service'),
          onClick: () => {
            app.shell.activateById(nbPanel.id);
            void app.commands.execute(CommandIDs.runAsService);
          }
        });
        nbPanel.toolbar.insertItem(10, 'condasvc-run-as-service', button);
        return button;
      }
    });

    model.start();
    return model;
  }
};

export default plugin;
