/** The create / edit form as a main-area widget. */
import { Dialog, MainAreaWidget, showDialog } from '@jupyterlab/apputils';
import type { TranslationBundle } from '@jupyterlab/translation';
import { ReactWidget } from '@jupyterlab/ui-components';
import type { Message } from '@lumino/messaging';
import React from 'react';

import { IServiceFormProps, ServiceForm } from '../components/ServiceForm';

/** The form's props but the two the editor supplies itself. */
export type IServiceEditorOptions = Omit<IServiceFormProps, 'onCancel' | 'onDirty'>;

export class ServiceEditor extends ReactWidget {
  constructor(private readonly _options: IServiceEditorOptions) {
    super();
    this.addClass('jp-condasvc-editor');
  }

  /** True once the user changed a field; closing then asks before discarding. */
  dirty = false;

  get trans(): TranslationBundle {
    return this._options.trans;
  }

  render(): JSX.Element {
    return (
      <ServiceForm
        {...this._options}
        onCancel={() => (this.parent ? this.parent.close() : this.close())}
        onDirty={dirty => {
          this.dirty = dirty;
          if (this.parent) {
            this.parent.title.className = dirty ? 'jp-mod-dirty' : '';
          }
        }}
      />
    );
  }
}

/** The editor's tab: Cancel or closing it asks before a filled-in form is discarded. */
export class ServiceEditorWidget extends MainAreaWidget<ServiceEditor> {
  protected onCloseRequest(msg: Message): void {
    if (!this.content.dirty) {
      super.onCloseRequest(msg);
      return;
    }
    const trans = this.content.trans;
    void showDialog({
      title: trans.__('Discard your changes?'),
      body: trans.__('The form has changes that are not saved. Closing it discards them.'),
      buttons: [
        Dialog.cancelButton({ label: trans.__('Keep editing') }),
        Dialog.warnButton({ label: trans.__('Discard') })
      ]
    }).then(answer => {
      if (answer.button.accept) {
        this.content.dirty = false;
        this.dispose();
      }
    });
  }
}
