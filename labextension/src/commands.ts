/** Every command of the extension, in one place (palette, menus and buttons call these). */
import type { JupyterFrontEnd } from '@jupyterlab/application';
import { Dialog, InputDialog, MainAreaWidget, Notification, showDialog } from '@jupyterlab/apputils';
import { PageConfig, PathExt } from '@jupyterlab/coreutils';
import type { IDocumentManager } from '@jupyterlab/docmanager';
import { FileDialog, IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import type { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import type { TranslationBundle } from '@jupyterlab/translation';
import { addIcon, editIcon, refreshIcon, runIcon, stopIcon } from '@jupyterlab/ui-components';

import { CondaSvcAPI, ServiceAction } from './api';
import { downloadBlob } from './download';
import { logsIcon, servicesIcon } from './icons';
import { kernelEnv } from './kernelenv';
import { hostOf, serviceKey, serviceLabel } from './hosts';
import { restartNeeded } from './listview';
import { servicesOfPath, uniqueName } from './runfile';
import { specFromText, specToYaml } from './specfile';
import type { ServicesModel } from './model';
import { CommandIDs, IService, IServiceSpec, Kind, LOCAL_HOST } from './tokens';
import { ServiceEditor, ServiceEditorWidget } from './widgets/editor';
import { ServiceView } from './widgets/serviceview';

export interface ISettingsValues {
  notifyOnFailure: boolean;
  logInitialLines: number;
  wrapLogs: boolean;
  startAfterCreate: boolean;
}

export interface ICommandDeps {
  app: JupyterFrontEnd;
  api: CondaSvcAPI;
  model: ServicesModel;
  trans: TranslationBundle;
  panelId: string;
  settings: () => ISettingsValues;
  docManager: IDocumentManager | null;
  notebooks: INotebookTracker | null;
  fileBrowser: IDefaultFileBrowser | null;
}

/** A service as commands name it: its name and host (`local` when args give none). */
export interface IServiceRef {
  name: string;
  host: string;
}

/**
 * The service a command is about: from args ({name, host}), the sidebar row right-clicked, else ask
 * (palette; another host's services are listed as "name @ host").
 */
async function pickName(deps: ICommandDeps, args: Record<string, unknown>, label: string): Promise<IServiceRef | null> {
  const hostArg = typeof args.host === 'string' && args.host ? args.host : LOCAL_HOST;
  if (typeof args.name === 'string' && args.name) {
    return { name: args.name, host: hostArg };
  }
  if (args.fromRow) {
    const row = deps.app.contextMenuHitTest(node => node.classList.contains('jp-condasvc-item'));
    return row?.dataset.name ? { name: row.dataset.name, host: row.dataset.host || LOCAL_HOST } : null;
  }
  const refs = deps.model.services.map(s => ({ name: s.name, host: hostOf(s) }));
  if (!refs.length) {
    Notification.info(deps.trans.__('There are no services yet.'), { autoClose: 4000 });
    return null;
  }
  const items = refs.map(r => serviceLabel(r.name, r.host));
  const result = await InputDialog.getItem({ title: label, items });
  const index = result.button.accept && result.value !== null ? items.indexOf(result.value) : -1;
  return index >= 0 ? refs[index] : null;
}

/** The service a command is about (see pickName); undefined when none is picked or it is gone. */
async function pickService(
  deps: ICommandDeps,
  args: Record<string, unknown>,
  label: string
): Promise<IService | undefined> {
  const ref = await pickName(deps, args, label);
  return ref ? deps.model.get(ref.name, ref.host) : undefined;
}

/** Ask the browser for one local file (null when the dialog is cancelled). */
function pickLocalFile(accept: string): Promise<File | null> {
  return new Promise(resolve => {
    const input = document.createElement('input');
    input.type = 'file';
    input.accept = accept;
    input.style.display = 'none';
    input.addEventListener('change', () => {
      resolve(input.files?.[0] ?? null);
      input.remove();
    });
    input.addEventListener('cancel', () => {
      resolve(null);
      input.remove();
    });
    document.body.appendChild(input);
    input.click();
  });
}

/** A default service name from a file name: letters, digits and '-'. */
export function nameFromPath(path: string): string {
  const stem = PathExt.basename(path).replace(/\.(ipynb|py)$/, '');
  const name = stem
    .replace(/[^A-Za-z0-9_.-]+/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 64);
  return name || 'service';
}

/** A server path relative to the Lab root, for the document manager. */
function toLabPath(path: string): string {
  const root = PageConfig.getOption('serverRoot');
  if (path.startsWith('/') && root && path.startsWith(root.replace(/\/+$/, '') + '/')) {
    return path.slice(root.replace(/\/+$/, '').length + 1);
  }
  return path;
}

export function registerCommands(deps: ICommandDeps): void {
  const { app, api, model, trans } = deps;
  const { commands, shell } = app;
  const views = new Map<string, MainAreaWidget<ServiceView>>();
  let editorCount = 0;

  const fail = (what: string, error: unknown) => {
    Notification.error(`${what}: ${(error as Error).message}`, { autoClose: 8000 });
  };

  const openService = (name: string, host: string = LOCAL_HOST): MainAreaWidget<ServiceView> => {
    const key = serviceKey(name, host);
    let widget = views.get(key);
    if (!widget || widget.isDisposed) {
      const s = deps.settings();
      const content = new ServiceView({
        name,
        host,
        model,
        api,
        commands,
        trans,
        initialLines: s.logInitialLines,
        wrapLogs: s.wrapLogs
      });
      widget = new MainAreaWidget({ content });
      // A local service's tab keeps its old id (layouts restored by earlier versions).
      widget.id =
        host === LOCAL_HOST ? `jp-condasvc-service-${name}` : `jp-condasvc-service-${encodeURIComponent(host)}-${name}`;
      widget.title.label = serviceLabel(name, host);
      widget.title.caption =
        host === LOCAL_HOST ? trans.__('Service %1', name) : trans.__('Service %1 on %2', name, host);
      widget.title.icon = servicesIcon;
      widget.title.closable = true;
      views.set(key, widget);
      widget.disposed.connect(() => views.delete(key));
      shell.add(widget, 'main');
    }
    shell.activateById(widget.id);
    return widget;
  };

  const openEditor = (initial: Partial<IServiceSpec>, editing?: string, host: string = LOCAL_HOST) => {
    const id = editing
      ? host === LOCAL_HOST
        ? `jp-condasvc-edit-${editing}`
        : `jp-condasvc-edit-${encodeURIComponent(host)}-${editing}`
      : `jp-condasvc-new-${++editorCount}`;
    const existing = editing ? [...shell.widgets('main')].find(w => w.id === id) : undefined;
    if (existing) {
      shell.activateById(id);
      return;
    }
    const suffix = (kind: Kind) => (kind === 'notebook' ? '.ipynb' : '.py');
    const content = new ServiceEditor({
      api,
      trans,
      initial,
      editing,
      host,
      hosts: model.multiHost ? model.hosts.map(h => h.name) : undefined,
      listFiles: async dir => {
        const listing = await app.serviceManager.contents.get(dir, { content: true });
        const items = (listing.content ?? []) as { type: string; path: string }[];
        return items.map(i => (i.type === 'directory' ? `${i.path}/` : i.path)).sort();
      },
      browse: async kind => {
        if (!deps.docManager) {
          return null;
        }
        const result = await FileDialog.getOpenFiles({
          manager: deps.docManager,
          title: kind === 'notebook' ? trans.__('Choose a notebook') : trans.__('Choose a script'),
          filter: m => (m.type === 'directory' || m.name.endsWith(suffix(kind)) ? {} : null)
        });
        return result.button.accept && result.value?.length ? result.value[0].path : null;
      },
      onDone: (service: IService) => {
        model.ensure(service);
        widget.dispose();
        const ref = { name: service.name, host: hostOf(service) };
        openService(ref.name, ref.host);
        if (!editing && deps.settings().startAfterCreate && !service.spec.schedule) {
          void commands.execute(CommandIDs.startService, ref);
        }
        if (editing) {
          if (restartNeeded(service)) {
            Notification.info(trans.__('Saved %1. It still runs the old version until restarted.', service.name), {
              autoClose: 8000,
              actions: [
                {
                  label: trans.__('Restart now'),
                  callback: () => void commands.execute(CommandIDs.restartService, ref)
                }
              ]
            });
          } else {
            Notification.info(trans.__('Saved %1.', service.name), { autoClose: 4000 });
          }
        }
      }
    });
    const widget = new ServiceEditorWidget({ content });
    widget.id = id;
    widget.title.label = editing ? trans.__('Edit %1', serviceLabel(editing, host)) : trans.__('New service');
    widget.title.icon = servicesIcon;
    widget.title.closable = true;
    shell.add(widget, 'main');
    shell.activateById(widget.id);
  };

  commands.addCommand(CommandIDs.openPanel, {
    label: trans.__('Show Services'),
    caption: trans.__('Show the services panel'),
    icon: servicesIcon,
    execute: () => shell.activateById(deps.panelId)
  });

  commands.addCommand(CommandIDs.newService, {
    label: args => (args.isPalette ? trans.__('New Service') : trans.__('New service…')),
    caption: trans.__('Register a notebook, script or command as a service'),
    icon: args => (args.isPalette ? undefined : addIcon),
    execute: args => openEditor({ ...(args.spec as Partial<IServiceSpec> | undefined) })
  });

  commands.addCommand(CommandIDs.editService, {
    label: trans.__('Edit Service…'),
    icon: args => (args.isPalette ? undefined : editIcon),
    execute: async args => {
      const service = await pickService(deps, args, trans.__('Edit which service?'));
      if (service) {
        openEditor(service.spec, service.name, hostOf(service));
      }
    }
  });

  commands.addCommand(CommandIDs.duplicateService, {
    label: trans.__('Duplicate Service…'),
    caption: trans.__('A new service with the same settings (secret values are not copied)'),
    execute: async args => {
      const service = await pickService(deps, args, trans.__('Duplicate which service?'));
      if (!service) {
        return;
      }
      const secrets = new Set(service.spec.secrets ?? []);
      const environment: Record<string, string> = {};
      for (const [key, value] of Object.entries(service.spec.environment ?? {})) {
        environment[key] = secrets.has(key) ? '' : (value ?? '');
      }
      openEditor(
        {
          ...service.spec,
          name: uniqueName(`${service.name.slice(0, 58)}-copy`, model.services),
          environment,
          secrets: [...secrets],
          enabled: false
        },
        undefined,
        hostOf(service)
      );
    }
  });

  commands.addCommand(CommandIDs.exportSpec, {
    label: trans.__('Export Spec…'),
    caption: trans.__('Download the service spec as NAME.yaml (for `jupyter condasvc create -f` or Import Spec)'),
    execute: async args => {
      const service = await pickService(deps, args, trans.__('Export which service?'));
      if (service) {
        downloadBlob(`${service.name}.yaml`, new Blob([specToYaml(service.spec)], { type: 'application/yaml' }));
      }
    }
  });

  commands.addCommand(CommandIDs.importSpec, {
    label: trans.__('Import Spec…'),
    caption: trans.__('Open the New service form filled in from a YAML or JSON spec file'),
    execute: async () => {
      const file = await pickLocalFile('.yaml,.yml,.json,application/yaml,application/json');
      if (!file) {
        return;
      }
      let spec: Partial<IServiceSpec>;
      try {
        spec = specFromText(await file.text(), file.name);
      } catch (e) {
        Notification.error((e as Error).message, { autoClose: 8000 });
        return;
      }
      if (typeof spec.name === 'string' && spec.name) {
        spec = { ...spec, name: uniqueName(spec.name, model.services) };
      }
      openEditor(spec);
    }
  });

  // The sidebar rows' context menu (the row right-clicked names the service).
  const rowItems: Array<[string, number]> = [
    [CommandIDs.openService, 0],
    [CommandIDs.showLogs, 1],
    [CommandIDs.editService, 2],
    [CommandIDs.duplicateService, 3],
    [CommandIDs.exportSpec, 4],
    [CommandIDs.deleteService, 10]
  ];
  for (const [command, rank] of rowItems) {
    app.contextMenu.addItem({ command, args: { fromRow: true }, selector: '.jp-condasvc-item', rank });
  }

  commands.addCommand(CommandIDs.openService, {
    label: trans.__('Open Service…'),
    icon: args => (args.isPalette ? undefined : servicesIcon),
    execute: async args => {
      const ref = await pickName(deps, args, trans.__('Open which service?'));
      if (ref) {
        openService(ref.name, ref.host);
      }
    }
  });

  commands.addCommand(CommandIDs.showLogs, {
    label: trans.__('Show Service Logs…'),
    icon: args => (args.isPalette ? undefined : logsIcon),
    execute: async args => {
      const ref = await pickName(deps, args, trans.__('Logs of which service?'));
      if (ref) {
        const widget = openService(ref.name, ref.host);
        window.requestAnimationFrame(() => {
          widget.content.node.querySelector<HTMLElement>('.jp-condasvc-logs-scroller')?.focus();
        });
      }
    }
  });

  const action = (id: string, verb: ServiceAction, label: string, question: string, icon?: typeof runIcon) => {
    commands.addCommand(id, {
      label,
      icon: args => (args.isPalette ? undefined : icon),
      execute: async args => {
        const ref = await pickName(deps, args, question);
        if (!ref) {
          return;
        }
        deps.model.userAction(ref.name, verb, ref.host);
        try {
          await api.at(ref.host).act(ref.name, verb);
        } catch (error) {
          fail(trans.__('%1 of %2 failed', label.replace(/…$/, ''), serviceLabel(ref.name, ref.host)), error);
        }
      }
    });
  };
  action(CommandIDs.startService, 'start', trans.__('Start Service…'), trans.__('Start which service?'), runIcon);
  action(CommandIDs.stopService, 'stop', trans.__('Stop Service…'), trans.__('Stop which service?'), stopIcon);
  action(
    CommandIDs.restartService,
    'restart',
    trans.__('Restart Service…'),
    trans.__('Restart which service?'),
    refreshIcon
  );
  action(
    CommandIDs.resetFailedService,
    'reset-failed',
    trans.__('Reset Failed State of Service…'),
    trans.__('Reset which service?')
  );
  action(
    CommandIDs.runNowService,
    'run-now',
    trans.__('Run Scheduled Service Now…'),
    trans.__('Run which service now?')
  );
  action(
    CommandIDs.enableService,
    'enable',
    trans.__('Start Service at Login…'),
    trans.__('Start which service at login?')
  );
  action(CommandIDs.disableService, 'disable', trans.__("Don't Start Service at Login…"), trans.__('Which service?'));
  action(CommandIDs.pauseService, 'pause', trans.__('Pause Schedule of Service…'), trans.__('Pause which schedule?'));
  action(
    CommandIDs.resumeService,
    'resume',
    trans.__('Resume Schedule of Service…'),
    trans.__('Resume which schedule?')
  );
  action(
    CommandIDs.resetAndStartService,
    'reset-and-start',
    trans.__('Reset and Start Service…'),
    trans.__('Reset the start limit of which service, and start it?'),
    runIcon
  );

  /** Bulk delete from the sidebar: one question for all of them. */
  const deleteMany = async (refs: IServiceRef[]) => {
    if (!refs.length) {
      return;
    }
    const names = refs.map(r => serviceLabel(r.name, r.host));
    const shown = names.length > 8 ? [...names.slice(0, 8), '…'] : names;
    const answer = await showDialog({
      title: trans._n('Delete %1 service?', 'Delete %1 services?', names.length),
      body: `${shown.join(', ')}. ${trans.__('Each is stopped and its unit, variables and state are removed. Your files stay.')}`,
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: trans.__('Delete') })]
    });
    if (!answer.button.accept) {
      return;
    }
    const results = await Promise.allSettled(refs.map(ref => api.at(ref.host).remove(ref.name)));
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') {
        views.get(serviceKey(refs[i].name, refs[i].host))?.dispose();
      } else {
        fail(trans.__('Deleting %1 failed', names[i]), r.reason);
      }
    });
  };

  commands.addCommand(CommandIDs.deleteService, {
    label: trans.__('Delete Service…'),
    execute: async args => {
      // Many: `services` [{name, host}] (the sidebar's selection), or `names` of local services.
      if (Array.isArray(args.services) || Array.isArray(args.names)) {
        const refs: IServiceRef[] = [];
        for (const item of (args.services ?? args.names) as unknown[]) {
          if (typeof item === 'string') {
            refs.push({ name: item, host: LOCAL_HOST });
          } else if (item && typeof (item as IServiceRef).name === 'string') {
            refs.push({ name: (item as IServiceRef).name, host: (item as IServiceRef).host || LOCAL_HOST });
          }
        }
        await deleteMany(refs);
        return;
      }
      const ref = await pickName(deps, args, trans.__('Delete which service?'));
      if (!ref) {
        return;
      }
      const { name, host } = ref;
      const answer = await showDialog({
        title: trans.__('Delete %1?', serviceLabel(name, host)),
        body: trans.__('The service is stopped and its unit, variables and state are removed. Your files stay.'),
        buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: trans.__('Delete') })]
      });
      if (!answer.button.accept) {
        return;
      }
      deps.model.userAction(name, 'delete', host);
      try {
        await api.at(host).remove(name);
        views.get(serviceKey(name, host))?.dispose();
      } catch (error) {
        fail(trans.__('Deleting %1 failed', serviceLabel(name, host)), error);
      }
    }
  });

  commands.addCommand(CommandIDs.openOutput, {
    label: trans.__('Open Executed Notebook…'),
    execute: async args => {
      const service = await pickService(deps, args, trans.__('Which notebook service?'));
      if (!service || !deps.docManager) {
        return;
      }
      if (hostOf(service) !== LOCAL_HOST) {
        // Its output is a file on that host: the run history holds each run's executed copy.
        openService(service.name, hostOf(service));
        Notification.info(
          trans.__(
            '%1 runs on %2: open a run in its Run history to see the executed notebook.',
            service.name,
            hostOf(service)
          ),
          { autoClose: 6000 }
        );
        return;
      }
      const path = service.spec.path ?? '';
      const output = service.spec.output || path.replace(/\.ipynb$/, '.out.ipynb');
      const labPath = toLabPath(output);
      try {
        await app.serviceManager.contents.get(labPath, { content: false });
      } catch {
        Notification.warning(trans.__('%1 has not been written yet: the notebook has not finished a run.', labPath), {
          autoClose: 6000
        });
        return;
      }
      deps.docManager.openOrReveal(labPath);
    }
  });

  /** The open document of a path, if any (its unsaved changes are what the user sees). */
  const openContext = (path: string) => {
    const panel = deps.notebooks?.find(p => p.context.path === path);
    if (panel) {
      return panel.context;
    }
    const widget = deps.docManager?.findWidget(path);
    return widget ? deps.docManager?.contextForWidget(widget) : undefined;
  };

  const runAsService = async (path: string, kind: Kind, env: string | null) => {
    // A service runs the file on disk: unsaved changes are saved first, or the user chooses the saved version.
    const context = openContext(path);
    if (context?.model.dirty) {
      const answer = await showDialog({
        title: trans.__('Save %1 first?', PathExt.basename(path)),
        body: trans.__(
          'It has unsaved changes. A service runs the file on disk, so without saving it would run the last saved version.'
        ),
        buttons: [
          Dialog.cancelButton(),
          Dialog.createButton({ label: trans.__('Use the saved version'), displayType: 'default' }),
          Dialog.okButton({ label: trans.__('Save and continue') })
        ],
        defaultButton: 2
      });
      if (
        answer.button.label !== trans.__('Use the saved version') &&
        answer.button.label !== trans.__('Save and continue')
      ) {
        return;
      }
      if (answer.button.label === trans.__('Save and continue')) {
        try {
          await context.save();
        } catch (error) {
          fail(trans.__('Saving %1 failed', path), error);
          return;
        }
      }
    }
    // The same file already has a service: say so, and offer it.
    const local = model.services.filter(s => hostOf(s) === LOCAL_HOST);
    const same = servicesOfPath(local, path, PageConfig.getOption('serverRoot'));
    if (same.length) {
      const answer = await showDialog({
        title: trans.__('%1 already runs as a service', PathExt.basename(path)),
        body: trans._n(
          'The service %2 runs this file. Open it, or create another service for the same file?',
          'The services %2 run this file. Open the first, or create another service for the same file?',
          same.length,
          same.map(s => s.name).join(', ')
        ),
        buttons: [
          Dialog.cancelButton(),
          Dialog.createButton({ label: trans.__('Open %1', same[0].name), displayType: 'default' }),
          Dialog.okButton({ label: trans.__('Create another') })
        ],
        defaultButton: 1
      });
      if (answer.button.label === trans.__('Open %1', same[0].name)) {
        openService(same[0].name);
        return;
      }
      if (!answer.button.accept) {
        return;
      }
    }
    openEditor({ name: uniqueName(nameFromPath(path), model.services), kind, path, ...(env ? { env } : {}) });
  };

  /** The environment a notebook's kernel runs in (null: no notebook, or it cannot tell). */
  const envOfNotebook = async (panel: NotebookPanel | null | undefined): Promise<string | null> =>
    panel
      ? kernelEnv(panel.sessionContext, app.serviceManager.kernelspecs.specs, () =>
          api.environments().then(r => r.environments)
        )
      : null;

  commands.addCommand(CommandIDs.runAsService, {
    label: trans.__('Run Notebook as Service…'),
    caption: trans.__("Run this notebook as a service, in its kernel's environment"),
    icon: args => (args.isPalette ? undefined : servicesIcon),
    isEnabled: () => !!deps.notebooks?.currentWidget,
    execute: async () => {
      const panel = deps.notebooks?.currentWidget;
      if (!panel) {
        return;
      }
      await runAsService(panel.context.path, 'notebook', await envOfNotebook(panel));
    }
  });

  commands.addCommand(CommandIDs.runFileAsService, {
    label: trans.__('Run as Service…'),
    icon: servicesIcon,
    execute: async args => {
      let path = typeof args.path === 'string' ? args.path : '';
      if (!path) {
        const item = deps.fileBrowser?.selectedItems().next();
        path = item && !item.done ? item.value.path : '';
      }
      if (!path) {
        return;
      }
      const kind: Kind = path.endsWith('.ipynb') ? 'notebook' : 'script';
      // A notebook open with a kernel: use its environment.
      const env = await envOfNotebook(deps.notebooks?.find(p => p.context.path === path));
      await runAsService(path, kind, env);
    }
  });

  commands.addCommand(CommandIDs.refreshHost, {
    label: trans.__('Check Services Host Again'),
    execute: () => model.refreshHost()
  });

  commands.addCommand(CommandIDs.enableLinger, {
    label: trans.__('Start My Services at Boot (Enable Linger)'),
    isVisible: () => model.host?.linger.enabled !== true,
    execute: async () => {
      try {
        const state = await api.setLinger(true);
        Notification.success(
          trans.__('Linger is on for %1: services that start at login now start at boot.', state.user),
          {
            autoClose: 6000
          }
        );
      } catch (error) {
        Notification.error((error as Error).message);
      }
      await model.refreshHost();
    }
  });
}
