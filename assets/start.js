import init from './unionpass-ui.js';
init().catch(function (e) { window.__unionpassShowError('init: ' + e); });
