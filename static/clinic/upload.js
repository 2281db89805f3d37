/* Per-eye drag-and-drop upload of fundus photos with progress (XMLHttpRequest), no dependencies.
 * The server validates every file again; the checks here only save a useless upload. */
(function () {
  "use strict";
  var root = document.getElementById("uploader");
  if (!root) { return; }
  var maxBytes = Number(root.dataset.maxBytes);
  var csrf = root.querySelector("input[name=csrfmiddlewaretoken]").value;
  var ACCEPTED_TYPES = ["image/jpeg", "image/png", "image/tiff"];
  var ACCEPTED_EXTENSIONS = /\.(jpe?g|png|tiff?)$/i;

  function format(template, values) {
    return template.replace(/%\((\w+)\)s/g, function (_match, key) { return values[key]; });
  }
  // One decimal, ".0" dropped; sizes round up and limits down (as screening.uploads does), so a
  // small photo never reads "0.0 MB" and a file just over the limit never reads as equal to it.
  function decimal(value, roundUp) {
    var tenths = roundUp ? Math.ceil(value * 10) : Math.floor(value * 10);
    return (tenths / 10).toFixed(1).replace(/\.0$/, "");
  }
  function megabytes(bytes, roundUp) { return decimal(bytes / 1024 / 1024, roundUp); }
  function fileSize(bytes) {
    return bytes >= 1024 * 1024 ? megabytes(bytes, true) + " MB" : decimal(bytes / 1024, true) + " KB";
  }

  function precheck(file) {
    var typeOk = ACCEPTED_TYPES.indexOf(file.type) !== -1 || (!file.type && ACCEPTED_EXTENSIONS.test(file.name));
    if (!typeOk && !ACCEPTED_EXTENSIONS.test(file.name)) {
      return format(root.dataset.msgType, { name: file.name });
    }
    if (file.size > maxBytes) {
      return format(root.dataset.msgSize, { size: megabytes(file.size, true), limit: megabytes(maxBytes, false) });
    }
    if (file.size === 0) { return format(root.dataset.msgEmpty, { name: file.name }); }
    return "";
  }

  function addItem(list, file) {
    var item = document.createElement("li");
    item.className = "upload-item";
    var preview = document.createElement("img");
    preview.alt = "";
    if (/^image\/(jpeg|png)$/.test(file.type)) {
      preview.src = URL.createObjectURL(file);
      preview.onload = function () { URL.revokeObjectURL(preview.src); };
    }
    var body = document.createElement("div");
    var name = document.createElement("div");
    name.textContent = file.name + " (" + fileSize(file.size) + ")";
    var progress = document.createElement("progress");
    progress.max = 100;
    progress.value = 0;
    progress.setAttribute("aria-label", format(root.dataset.msgProgress, { name: file.name }));
    var message = document.createElement("div");
    message.className = "upload-message";
    message.setAttribute("role", "status");
    body.append(name, progress, message);
    item.append(preview, body);
    list.prepend(item);
    return { item: item, preview: preview, progress: progress, message: message };
  }

  function fail(parts, text) {
    parts.progress.hidden = true;
    parts.message.className = "upload-message upload-error";
    parts.message.setAttribute("role", "alert");
    parts.message.textContent = text;
    parts.item.classList.add("failed");
  }

  function upload(eye, list, file) {
    var parts = addItem(list, file);
    var problem = precheck(file);
    if (problem) { fail(parts, problem); return; }
    send(parts, eye, file, false);
  }

  /* A photo already stored for another screening of the patient comes back 409: say so, and
   * send it again only when the technician confirms (the server audits the confirmation). */
  function askToConfirm(parts, eye, file, text) {
    fail(parts, text);
    var button = document.createElement("button");
    button.type = "button";
    button.className = "button secondary small";
    button.textContent = root.dataset.msgConfirm;
    button.addEventListener("click", function () {
      button.remove();
      parts.item.classList.remove("failed");
      parts.message.className = "upload-message";
      parts.message.setAttribute("role", "status");
      parts.progress.hidden = false;
      send(parts, eye, file, true);
    });
    parts.message.after(button);
  }

  function send(parts, eye, file, confirmDuplicate) {
    var data = new FormData();
    data.append("eye", eye);
    data.append("file", file);
    if (confirmDuplicate) { data.append("confirm_duplicate", "1"); }
    var request = new XMLHttpRequest();
    request.open("POST", root.dataset.url);
    request.setRequestHeader("X-CSRFToken", csrf);
    request.setRequestHeader("Accept", "application/json");
    parts.message.textContent = root.dataset.msgUploading;
    request.upload.addEventListener("progress", function (event) {
      if (event.lengthComputable) { parts.progress.value = Math.round((event.loaded / event.total) * 100); }
    });
    request.addEventListener("load", function () {
      var body = null;
      try { body = JSON.parse(request.responseText); } catch (error) { body = null; }
      if (request.status === 201 && body) {
        parts.progress.value = 100;
        parts.progress.hidden = true;
        parts.message.className = "upload-message upload-ok";
        parts.message.textContent = body.message;
        parts.preview.src = body.thumb_url;
        parts.item.classList.add("uploaded");
        parts.item.dataset.imageId = body.id;
        var status = document.getElementById("ai-status");
        if (status) { status.dispatchEvent(new CustomEvent("ai-status-start")); }
      } else if (request.status === 409 && body && body.code === "duplicate") {
        askToConfirm(parts, eye, file, body.error);
      } else {
        fail(parts, (body && body.error) || format(root.dataset.msgServer, { status: request.status }));
      }
    });
    request.addEventListener("error", function () { fail(parts, root.dataset.msgNetwork); });
    request.send(data);
  }

  root.querySelectorAll("[data-eye]").forEach(function (section) {
    var eye = section.dataset.eye;
    var zone = section.querySelector(".dropzone");
    var input = section.querySelector("input[type=file]");
    var list = section.querySelector(".upload-list");
    function handle(files) { Array.prototype.forEach.call(files, function (file) { upload(eye, list, file); }); }
    input.addEventListener("change", function () { handle(input.files); input.value = ""; });
    ["dragenter", "dragover"].forEach(function (type) {
      zone.addEventListener(type, function (event) { event.preventDefault(); zone.classList.add("dragover"); });
    });
    ["dragleave", "drop"].forEach(function (type) {
      zone.addEventListener(type, function (event) { event.preventDefault(); zone.classList.remove("dragover"); });
    });
    zone.addEventListener("drop", function (event) { handle(event.dataTransfer.files); });
  });
})();
