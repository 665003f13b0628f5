// The inbox watches for new cases: every 30 seconds it asks how many wait, shows the count in
// the window's title and, when more cases are open than the page shows, a link to see them.
// Without JavaScript the page is the same, reloaded by hand.
(function () {
  "use strict";
  var notice = document.getElementById("new-cases");
  if (!notice || !window.fetch) { return; }
  var shown = parseInt(notice.dataset.open, 10);
  var suffix = document.title.replace(/^\(\d+\) /, "");

  function check() {
    fetch(notice.dataset.poll, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (answer) { return answer.ok ? answer.json() : null; })
      .then(function (counts) {
        if (!counts) { return; }
        document.title = (counts.waiting ? "(" + counts.waiting + ") " : "") + suffix;
        notice.hidden = !(counts.open > shown);
      })
      .catch(function () { /* offline for a moment: ask again next time */ });
  }

  window.setInterval(check, 30000);
})();
