// Shows any script error as visible text: a blank window would otherwise look like a rendering bug.
(function () {
  function show(text) {
    var pre = document.createElement('pre');
    pre.className = 'jserr';
    pre.textContent = String(text);
    (document.body || document.documentElement).appendChild(pre);
  }
  window.addEventListener('error', function (e) { show(e.message); });
  window.addEventListener('unhandledrejection', function (e) { show(e.reason); });
  window.__unionpassShowError = show;
})();
