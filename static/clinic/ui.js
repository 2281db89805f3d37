/* OphAI Clinic web UI: small behaviours, no dependencies. */
(function () {
  "use strict";

  /* Confirm before destructive or final actions: <form data-confirm="..."> or <button data-confirm>. */
  document.addEventListener("submit", function (event) {
    var submitter = event.submitter;
    var message = (submitter && submitter.dataset.confirm) || event.target.dataset.confirm;
    if (message && !window.confirm(message)) {
      event.preventDefault();
    }
  });

  /* A form marked data-submit-once is sent once: a double click does not post it twice. */
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (event.defaultPrevented || !form.hasAttribute("data-submit-once")) { return; }
    if (form.dataset.submitting === "true") { event.preventDefault(); return; }
    form.dataset.submitting = "true";
  });
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("form[data-submitting]").forEach(function (form) {
      delete form.dataset.submitting;
    });
  });

  /* A refused form: bring the first error into view and put the focus on it (the summary at
     the top lists every error with a link to it). A field in error gets the cursor; an error
     of the whole form (e.g. "changed since you opened it") is shown from its notice down. */
  var firstError = document.querySelector(".field.has-error") ||
    document.querySelector("form .nonfield");
  if (firstError) {
    var control = firstError.classList.contains("field") &&
      firstError.querySelector("input:not([type=hidden]), select, textarea");
    var anchor = document.querySelector("[data-error-anchor]") || firstError;
    if (!control) { firstError.setAttribute("tabindex", "-1"); }
    anchor.scrollIntoView({ block: control ? "center" : "start" });
    (control || firstError).focus({ preventScroll: true });
  }

  /* The amendment form opens behind its button (<details>); put the cursor in its first field. */
  document.querySelectorAll("details.amend").forEach(function (details) {
    details.addEventListener("toggle", function () {
      var field = details.open && details.querySelector("input:not([type=hidden]), textarea");
      if (field) { field.focus(); }
    });
  });

  /* Heatmap overlay: a checkbox shows it, a select picks the finding, a range sets opacity. */
  document.querySelectorAll("[data-heatmap-controls]").forEach(function (controls) {
    var frame = document.getElementById(controls.dataset.heatmapControls);
    var overlay = frame && frame.querySelector("img.heatmap");
    if (!overlay) { return; }
    var toggle = controls.querySelector("input[type=checkbox]");
    var picker = controls.querySelector("select");
    var opacity = controls.querySelector("input[type=range]");
    function update() {
      overlay.hidden = !toggle.checked;
      if (picker) { overlay.src = picker.value; }
      overlay.style.opacity = String(Number(opacity.value) / 100);
    }
    [toggle, picker, opacity].forEach(function (input) {
      if (input) { input.addEventListener("input", update); input.addEventListener("change", update); }
    });
    update();
  });

  /* Search as staff type: <form data-live-search> fetches its own page for what is typed
     (after a short pause) and swaps in the page's [data-live-results]; Enter still submits. */
  document.querySelectorAll("form[data-live-search]").forEach(function (form) {
    var input = form.querySelector("input[type=search]");
    var results = document.querySelector("[data-live-results]");
    if (!input || !results) { return; }
    var pause = null;
    var latest = 0;
    input.addEventListener("input", function (event) {
      if (event.isComposing) { return; }  /* a Chinese input method still choosing characters */
      clearTimeout(pause);
      var query = input.value.trim();
      if (query.length === 1) { return; }
      pause = setTimeout(function () {
        var asked = ++latest;
        var url = (form.getAttribute("action") || window.location.pathname) + "?" +
          new URLSearchParams({ q: query }).toString();
        fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
          .then(function (response) { return response.ok ? response.text() : null; })
          .then(function (html) {
            if (!html || asked !== latest) { return; }
            var fresh = new DOMParser().parseFromString(html, "text/html")
              .querySelector("[data-live-results]");
            if (!fresh) { return; }
            results.innerHTML = fresh.innerHTML;
            window.history.replaceState(null, "", url);
          })
          .catch(function () { /* offline for a moment: Enter still submits the form */ });
      }, 300);
    });
  });

  /* Live AI status: poll the JSON endpoint every 2 s until the analyses are finished. */
  var status = document.getElementById("ai-status");
  if (status) {
    var timer = null;
    var started = 0;
    var text = status.querySelector(".ai-status-text");
    var POLL_MS = 2000;
    var GIVE_UP_MS = 15 * 60 * 1000;
    function poll() {
      fetch(status.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) {
          if (!data) { return; }
          var changed = status.dataset.state !== data.state;
          status.dataset.state = data.state;
          text.textContent = data.text;
          if (data.record && updateRecordStatus(data.record)) { changed = true; }
          status.dispatchEvent(new CustomEvent("ai-status", { detail: data }));
          if (data.finished && !data.awaiting_report) {
            stop();
            if (changed && status.dataset.reload === "true") { window.location.reload(); }
          }
        })
        .catch(function () { /* offline for a moment: the next tick tries again */ });
      if (Date.now() - started > GIVE_UP_MS) { stop(); }
    }
    /* The record's status pills follow the server (after an upload, the AI, the report). */
    function updateRecordStatus(record) {
      var changed = false;
      document.querySelectorAll("[data-record-status]").forEach(function (pill) {
        if (pill.dataset.recordStatus === record.status) { return; }
        pill.classList.remove("pill-" + pill.dataset.recordStatus);
        pill.classList.add("pill-" + record.status);
        pill.dataset.recordStatus = record.status;
        pill.textContent = record.status_label;
        changed = true;
      });
      return changed;
    }
    function stop() { if (timer) { clearInterval(timer); timer = null; } }
    function start() {
      if (timer) { return; }
      started = Date.now();
      timer = setInterval(poll, POLL_MS);
      poll();
    }
    status.addEventListener("ai-status-start", start);
    if ((status.dataset.finished !== "true" || status.dataset.awaitingReport === "true") && status.dataset.state !== "no_photos") { start(); }
  }
})();
