// Live preview for the template editor: without JavaScript the Preview button does the same.
(function () {
  "use strict";
  var form = document.getElementById("template-form");
  if (!form || !window.fetch) { return; }
  var timer = null;
  var text = document.getElementById("preview-text");
  var subject = document.getElementById("preview-subject");
  var size = document.getElementById("preview-size");
  var error = document.getElementById("template-error");
  var token = form.querySelector("input[name=csrf_token]").value;

  function show(result) {
    error.hidden = !result.error;
    error.textContent = result.error || "";
    text.textContent = result.text || "";
    if (subject) {
      subject.hidden = !result.subject;
      subject.firstElementChild.textContent = result.subject || "";
    }
    if (size) {
      size.textContent = result.segments
        ? result.segments + " SMS · " + result.encoding + (result.unsupported ? " · UCS-2: " + result.unsupported : "")
        : "";
    }
  }

  function refresh() {
    fetch(form.dataset.preview, {
      method: "POST",
      body: new FormData(form),
      headers: { "X-CSRFToken": token },
      credentials: "same-origin"
    }).then(function (response) { return response.json(); }).then(show).catch(function () {});
  }

  form.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(refresh, 300);
  });
})();
