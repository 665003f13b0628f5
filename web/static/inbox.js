// The inbox watches for new cases: every 30 seconds it asks how many wait and shows the count
// in the window's title. When a case newer than the page's newest is open, or more are open,
// it reads the same view again and puts the new list in place; while cases are ticked for a bulk action it leaves
// the list alone and offers a link instead. Without JavaScript the page is the same,
// reloaded by hand.
(function () {
  "use strict";
  var notice = document.getElementById("new-cases");
  if (!notice || !window.fetch || !window.DOMParser) { return; }
  var newest = parseInt(notice.dataset.newest, 10);
  var open = parseInt(notice.dataset.open, 10);
  var suffix = document.title.replace(/^\(\d+\) /, "");

  function busy() {  // cases ticked, or a note being typed: the person's work comes first
    var list = document.getElementById("case-list");
    return document.querySelector(".cases input[type=checkbox]:checked") !== null ||
      (list !== null && list.contains(document.activeElement));
  }

  function replace(selector, fresh) {
    var old = document.querySelector(selector);
    var now = fresh.querySelector(selector);
    if (old && now) { old.replaceWith(now); }
    return Boolean(old && now);
  }

  function refresh() {
    fetch(window.location.href, { credentials: "same-origin" })
      .then(function (answer) { return answer.ok ? answer.text() : null; })
      .then(function (html) {
        if (!html) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html");
        if (replace("#case-list", fresh)) {
          replace("nav.tabs", fresh);
          notice.hidden = true;
        }
      })
      .catch(function () { notice.hidden = false; });
  }

  function check() {
    fetch(notice.dataset.poll, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (answer) { return answer.ok ? answer.json() : null; })
      .then(function (counts) {
        if (!counts) { return; }
        document.title = (counts.waiting ? "(" + counts.waiting + ") " : "") + suffix;
        // A new case (ids only grow, whatever was resolved meanwhile), or one reopened.
        var more = counts.newest > newest || counts.open > open;
        newest = counts.newest;
        open = counts.open;
        if (more) {
          if (busy()) { notice.hidden = false; } else { refresh(); }
        }
      })
      .catch(function () { /* offline for a moment: ask again next time */ });
  }

  window.setInterval(check, 30000);
})();
