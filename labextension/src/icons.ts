/** The extension's icons (LabIcon: they follow the theme's icon colours). */
import { LabIcon } from '@jupyterlab/ui-components';

import logsSvg from '../style/icons/logs.svg';
import servicesSvg from '../style/icons/services.svg';

export const servicesIcon = new LabIcon({ name: 'condasvc:services', svgstr: servicesSvg });
export const logsIcon = new LabIcon({ name: 'condasvc:logs', svgstr: logsSvg });
