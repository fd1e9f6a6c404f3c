// Before the UI has started, a script error would leave a blank window that looks like a rendering
// bug: say so in both languages (the i18n table lives in the UI, which did not start), with the
// detail folded away for whoever helps. Once the UI is up (`__unionpassStarted`), its screens say
// what went wrong by their own error codes. Every uncaught error, before or after, goes to the
// console and to the app's log file (the shell's `log_ui_panic`): a panic in the wasm UI arrives
// here as `RuntimeError: unreachable` with its stack.
(function () {
  var shown = false;
  // at most 20 per page, and never the same one twice in a row: after a wasm panic a timer can
  // fail again on every tick
  var logged = 0, last = null;
  function log(text) {
    text = String(text);
    if (logged >= 20 || text === last) return;
    logged += 1;
    last = text;
    try {
      window.__TAURI__.core.invoke('log_ui_panic', { req: { message: text } })
        .catch(function () {});
    } catch (_) { /* no shell: the console has it */ }
  }
  function show(text) {
    if (window.console) console.error(text);
    log(text);
    if (window.__unionpassStarted || shown) return;
    shown = true;
    var box = document.createElement('div');
    box.className = 'jserr';
    box.setAttribute('role', 'alert');
    var p = document.createElement('p');
    p.textContent = '工会通没能正常打开，请关闭后重新打开；若仍如此，请把下面的信息告诉工会。'
      + ' / UnionPass did not start properly: close and reopen it; if it happens again, tell your union what follows.';
    var details = document.createElement('details');
    var summary = document.createElement('summary');
    summary.textContent = '详细信息 / Details';
    var pre = document.createElement('pre');
    pre.textContent = String(text);
    details.appendChild(summary);
    details.appendChild(pre);
    box.appendChild(p);
    box.appendChild(details);
    (document.body || document.documentElement).appendChild(box);
  }
  // with the stack where there is one (a wasm trap's names the wasm functions by index)
  function detail(err, fallback) {
    return err && err.stack ? String(err) + '\n' + err.stack : String(fallback);
  }
  window.addEventListener('error', function (e) { show(detail(e.error, e.message)); });
  window.addEventListener('unhandledrejection', function (e) { show(detail(e.reason, e.reason)); });
  window.__unionpassShowError = show;
})();
