// Before the UI has started, a script error would leave a blank window that looks like a rendering
// bug: say so in both languages (the i18n table lives in the UI, which did not start), with the
// detail folded away for whoever helps. Once the UI is up (`__unionpassStarted`), its screens say
// what went wrong by their own error codes; a stray error is only logged to the console.
(function () {
  var shown = false;
  function show(text) {
    if (window.console) console.error(text);
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
  window.addEventListener('error', function (e) { show(e.message); });
  window.addEventListener('unhandledrejection', function (e) { show(e.reason); });
  window.__unionpassShowError = show;
})();
