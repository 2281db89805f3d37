/* Photo viewer, no dependencies: wheel/pinch zoom and drag pan, red-free (green channel) and
   contrast-enhanced views drawn on a canvas, the heatmap overlay with its colour legend and
   opacity (inside the zoomed layer, so it stays on the photo), full screen, and the arrow keys
   between photos.

   <div class="viewer" data-viewer data-photos='[{"src", "caption", "heatmaps": [{"url",
   "label"}]}]' data-sync="group">: viewers of one sync group share zoom, position and view
   (the comparison's two visits of one eye). A <dialog data-viewer-dialog> holds a viewer that
   buttons with data-viewer-open="<photo index>" open. */
(function () {
  "use strict";

  var MIN_SCALE = 1;
  var MAX_SCALE = 10;
  var STEP = 1.25;
  var MAX_CANVAS = 2048;
  var groups = {};
  var processedCache = {};

  function clamp(value, low, high) { return Math.max(low, Math.min(high, value)); }

  /* The fundus is a bright disc on black: the background (below this) is left out of the
     histograms so it does not decide the stretch. */
  var BACKGROUND = 12;

  function percentiles(histogram, total, low, high) {
    var seen = 0, lo = 0, hi = 255, i;
    for (i = 0; i < 256; i++) { seen += histogram[i]; if (seen >= total * low) { lo = i; break; } }
    seen = 0;
    for (i = 255; i >= 0; i--) { seen += histogram[i]; if (seen >= total * (1 - high)) { hi = i; break; } }
    return hi > lo ? [lo, hi] : [0, 255];
  }

  /* Red-free: the green channel alone (vessels and haemorrhages stand out), stretched between
     its 1st and 99th percentile inside the fundus. */
  function redFree(pixels) {
    var histogram = new Uint32Array(256), total = 0, i;
    for (i = 0; i < pixels.length; i += 4) {
      if (pixels[i + 1] >= BACKGROUND) { histogram[pixels[i + 1]]++; total++; }
    }
    var range = percentiles(histogram, total || 1, 0.01, 0.99);
    var scale = 255 / (range[1] - range[0]);
    for (i = 0; i < pixels.length; i += 4) {
      var value = clamp(Math.round((pixels[i + 1] - range[0]) * scale), 0, 255);
      pixels[i] = pixels[i + 1] = pixels[i + 2] = value;
    }
  }

  /* Contrast-enhanced: the luminance inside the fundus histogram-equalised (blended 70/30
     with the original so it does not overshoot), colours kept by scaling R, G and B alike. */
  function enhance(pixels) {
    var histogram = new Uint32Array(256), total = 0, i, luma = new Uint8Array(pixels.length / 4);
    for (i = 0; i < pixels.length; i += 4) {
      var y = Math.round(0.299 * pixels[i] + 0.587 * pixels[i + 1] + 0.114 * pixels[i + 2]);
      luma[i / 4] = y;
      if (y >= BACKGROUND) { histogram[y]++; total++; }
    }
    var mapping = new Float32Array(256), seen = 0;
    for (i = 0; i < 256; i++) {
      if (i >= BACKGROUND) { seen += histogram[i]; }
      var equalised = i < BACKGROUND ? i : BACKGROUND + (255 - BACKGROUND) * seen / (total || 1);
      mapping[i] = 0.7 * equalised + 0.3 * i;
    }
    for (i = 0; i < pixels.length; i += 4) {
      var before = luma[i / 4];
      if (before < BACKGROUND) { continue; }
      var ratio = mapping[before] / before;
      pixels[i] = clamp(Math.round(pixels[i] * ratio), 0, 255);
      pixels[i + 1] = clamp(Math.round(pixels[i + 1] * ratio), 0, 255);
      pixels[i + 2] = clamp(Math.round(pixels[i + 2] * ratio), 0, 255);
    }
  }

  var FILTERS = { "red-free": redFree, "enhanced": enhance };

  function processed(src, view, done) {
    var key = view + " " + src;
    if (processedCache[key]) { done(processedCache[key]); return; }
    var image = new Image();
    image.addEventListener("load", function () {
      var scale = Math.min(1, MAX_CANVAS / Math.max(image.naturalWidth, image.naturalHeight));
      var canvas = document.createElement("canvas");
      canvas.width = Math.max(1, Math.round(image.naturalWidth * scale));
      canvas.height = Math.max(1, Math.round(image.naturalHeight * scale));
      var context = canvas.getContext("2d");
      context.drawImage(image, 0, 0, canvas.width, canvas.height);
      var data = context.getImageData(0, 0, canvas.width, canvas.height);
      FILTERS[view](data.data);
      context.putImageData(data, 0, 0);
      processedCache[key] = canvas.toDataURL("image/png");
      done(processedCache[key]);
    });
    image.addEventListener("error", function () { done(null); });
    image.src = src;
  }

  function Viewer(root) {
    var self = this;
    this.root = root;
    this.stage = root.querySelector(".viewer-stage");
    this.layer = root.querySelector(".viewer-layer");
    this.photo = root.querySelector(".viewer-photo");
    this.heatmap = root.querySelector(".viewer-heatmap");
    this.caption = root.querySelector(".viewer-caption");
    this.counter = root.querySelector(".viewer-count");
    this.heatControls = root.querySelector(".viewer-heat");
    this.heatToggle = root.querySelector(".viewer-heat input[type=checkbox]");
    this.heatPicker = root.querySelector(".viewer-heat select");
    this.heatOpacity = root.querySelector(".viewer-heat input[type=range]");
    this.legend = root.querySelector(".viewer-legend");
    this.photos = JSON.parse(root.dataset.photos || "[]");
    this.index = 0;
    this.view = "original";
    this.transform = { scale: 1, x: 0, y: 0 };  // x, y: fractions of the stage's size
    this.pointers = {};
    this.gesture = null;
    this.sync = root.dataset.sync || "";
    if (this.sync) { (groups[this.sync] = groups[this.sync] || []).push(this); }
    root.viewer = this;

    this.stage.addEventListener("wheel", function (event) {
      event.preventDefault();
      var delta = event.deltaY * (event.deltaMode === 1 ? 33 : 1);
      var box = self.stage.getBoundingClientRect();
      self.zoomAt(Math.pow(STEP, clamp(-delta / 100, -3, 3)),
        event.clientX - box.left, event.clientY - box.top);
    }, { passive: false });
    this.stage.addEventListener("pointerdown", function (event) { self.pointerDown(event); });
    this.stage.addEventListener("pointermove", function (event) { self.pointerMove(event); });
    ["pointerup", "pointercancel", "lostpointercapture"].forEach(function (type) {
      self.stage.addEventListener(type, function (event) { self.pointerUp(event); });
    });
    this.stage.addEventListener("dblclick", function () { self.reset(); });
    root.addEventListener("keydown", function (event) { self.key(event); });
    root.querySelectorAll("[data-action]").forEach(function (button) {
      button.addEventListener("click", function () { self.action(button.dataset.action); });
    });
    root.querySelectorAll("[data-view]").forEach(function (button) {
      button.addEventListener("click", function () { self.setView(button.dataset.view); });
    });
    [this.heatToggle, this.heatPicker, this.heatOpacity].forEach(function (input) {
      if (input) { input.addEventListener("input", function () { self.updateHeatmap(); }); }
    });
    if (this.heatToggle) {
      this.heatToggle.addEventListener("change", function () { self.updateHeatmap(); });
    }
    if (this.photos.length) { this.show(0); }
  }

  Viewer.prototype.peers = function () {
    var self = this;
    return (groups[this.sync] || []).filter(function (other) { return other !== self; });
  };

  Viewer.prototype.render = function () {
    var t = this.transform;
    var width = this.stage.clientWidth, height = this.stage.clientHeight;
    this.layer.style.transform = "translate(" + (t.x * width).toFixed(2) + "px, " +
      (t.y * height).toFixed(2) + "px) scale(" + t.scale.toFixed(4) + ")";
    this.root.dataset.zoom = t.scale.toFixed(2);
    this.root.classList.toggle("zoomed", t.scale > 1);
  };

  Viewer.prototype.setTransform = function (scale, x, y) {
    scale = clamp(scale, MIN_SCALE, MAX_SCALE);
    // Keep the photo covering the stage: no empty border pulled in by panning.
    this.transform = { scale: scale, x: clamp(x, 1 - scale, 0), y: clamp(y, 1 - scale, 0) };
    this.render();
    var t = this.transform;
    this.peers().forEach(function (other) { other.transform = { scale: t.scale, x: t.x, y: t.y }; other.render(); });
  };

  /* Zoom by `factor` keeping the point (px, py) of the stage where it is. */
  Viewer.prototype.zoomAt = function (factor, px, py) {
    var t = this.transform;
    var width = this.stage.clientWidth || 1, height = this.stage.clientHeight || 1;
    var scale = clamp(t.scale * factor, MIN_SCALE, MAX_SCALE);
    var cx = (px - t.x * width) / t.scale, cy = (py - t.y * height) / t.scale;
    this.setTransform(scale, (px - cx * scale) / width, (py - cy * scale) / height);
  };

  Viewer.prototype.zoomCentre = function (factor) {
    this.zoomAt(factor, this.stage.clientWidth / 2, this.stage.clientHeight / 2);
  };

  Viewer.prototype.reset = function () { this.setTransform(1, 0, 0); };

  Viewer.prototype.pointerDown = function (event) {
    if (event.pointerType === "mouse" && event.button !== 0) { return; }
    try {
      this.stage.setPointerCapture(event.pointerId);
    } catch (error) { /* a pointer already gone: it just is not captured */ }
    this.pointers[event.pointerId] = { x: event.clientX, y: event.clientY };
    this.gesture = null;
    this.root.classList.add("dragging");
  };

  Viewer.prototype.pointerMove = function (event) {
    var previous = this.pointers[event.pointerId];
    if (!previous) { return; }
    var ids = Object.keys(this.pointers);
    var box = this.stage.getBoundingClientRect();
    if (ids.length >= 2) {
      var other = this.pointers[ids[0] === String(event.pointerId) ? ids[1] : ids[0]];
      var distance = Math.hypot(event.clientX - other.x, event.clientY - other.y);
      var before = this.gesture || Math.hypot(previous.x - other.x, previous.y - other.y);
      if (before > 0) {
        this.zoomAt(distance / before, (event.clientX + other.x) / 2 - box.left,
          (event.clientY + other.y) / 2 - box.top);
      }
      this.gesture = distance;
    } else {
      var t = this.transform;
      this.setTransform(t.scale, t.x + (event.clientX - previous.x) / (box.width || 1),
        t.y + (event.clientY - previous.y) / (box.height || 1));
    }
    this.pointers[event.pointerId] = { x: event.clientX, y: event.clientY };
  };

  Viewer.prototype.pointerUp = function (event) {
    delete this.pointers[event.pointerId];
    this.gesture = null;
    if (!Object.keys(this.pointers).length) { this.root.classList.remove("dragging"); }
  };

  Viewer.prototype.key = function (event) {
    var target = event.target;
    if (target.matches && target.matches("input, select, textarea")) { return; }
    var handled = true;
    if (event.key === "ArrowRight") { this.step(1); }
    else if (event.key === "ArrowLeft") { this.step(-1); }
    else if (event.key === "+" || event.key === "=") { this.zoomCentre(STEP); }
    else if (event.key === "-") { this.zoomCentre(1 / STEP); }
    else if (event.key === "0") { this.reset(); }
    else { handled = false; }
    if (handled) { event.preventDefault(); }
  };

  Viewer.prototype.action = function (name) {
    if (name === "zoom-in") { this.zoomCentre(STEP); }
    else if (name === "zoom-out") { this.zoomCentre(1 / STEP); }
    else if (name === "reset") { this.reset(); }
    else if (name === "previous") { this.step(-1); }
    else if (name === "next") { this.step(1); }
    else if (name === "fullscreen") { this.toggleFullscreen(); }
  };

  Viewer.prototype.toggleFullscreen = function () {
    if (document.fullscreenElement === this.root) {
      document.exitFullscreen();
    } else if (this.root.requestFullscreen) {
      this.root.requestFullscreen().catch(function () { /* refused: stay in the page */ });
    }
  };

  Viewer.prototype.step = function (offset) {
    if (this.photos.length > 1) { this.show(this.index + offset); }
  };

  Viewer.prototype.show = function (index) {
    var count = this.photos.length;
    this.index = ((index % count) + count) % count;
    var photo = this.photos[this.index];
    this.root.dataset.index = String(this.index);
    if (this.caption) { this.caption.textContent = photo.caption || ""; }
    if (this.counter) { this.counter.textContent = (this.index + 1) + " / " + count; }
    this.root.querySelectorAll("[data-action=previous], [data-action=next]").forEach(function (button) {
      button.disabled = count < 2;
    });
    this.photo.alt = photo.caption || "";
    this.showHeatmaps(photo.heatmaps || []);
    this.setView(this.view, true);
    this.transform = { scale: 1, x: 0, y: 0 };
    this.render();
  };

  Viewer.prototype.setView = function (view, local) {
    var self = this;
    var photo = this.photos[this.index];
    this.view = view;
    this.root.dataset.view = view;
    this.root.querySelectorAll("[data-view]").forEach(function (button) {
      button.setAttribute("aria-pressed", button.dataset.view === view ? "true" : "false");
    });
    if (!photo) { return; }
    delete this.root.dataset.viewReady;
    if (view === "original" || !FILTERS[view]) {
      this.photo.src = photo.src;
      this.root.dataset.viewReady = view;
    } else {
      processed(photo.src, view, function (url) {
        if (self.view !== view || self.photos[self.index] !== photo) { return; }
        // Unreadable: the original stays, and the view buttons say so.
        if (url === null) { self.setView("original", true); return; }
        self.photo.src = url;
        self.root.dataset.viewReady = view;
      });
    }
    if (!local) { this.peers().forEach(function (other) { other.setView(view, true); }); }
  };

  Viewer.prototype.showHeatmaps = function (heatmaps) {
    if (!this.heatControls) { return; }
    this.heatControls.hidden = !heatmaps.length;
    var picker = this.heatPicker;
    while (picker.firstChild) { picker.removeChild(picker.firstChild); }
    heatmaps.forEach(function (heatmap) {
      var option = document.createElement("option");
      option.value = heatmap.url;
      option.textContent = heatmap.label;
      picker.appendChild(option);
    });
    if (!heatmaps.length) { this.heatToggle.checked = false; }
    this.updateHeatmap();
  };

  Viewer.prototype.updateHeatmap = function () {
    if (!this.heatControls) { return; }
    var on = this.heatToggle.checked && !!this.heatPicker.value;
    this.heatmap.hidden = !on;
    if (this.legend) { this.legend.hidden = !on; }
    if (on && this.heatmap.getAttribute("src") !== this.heatPicker.value) {
      this.heatmap.src = this.heatPicker.value;
    }
    this.heatmap.style.opacity = String(Number(this.heatOpacity.value) / 100);
  };

  var viewers = [];
  document.querySelectorAll("[data-viewer]").forEach(function (root) {
    viewers.push(new Viewer(root));
  });
  window.addEventListener("resize", function () {
    viewers.forEach(function (viewer) { viewer.render(); });
  });
  document.addEventListener("fullscreenchange", function () {
    viewers.forEach(function (viewer) { viewer.render(); });
  });

  /* The screening page: a photo opens in the viewer's dialog; Esc or the button closes it. */
  document.querySelectorAll("dialog[data-viewer-dialog]").forEach(function (dialog) {
    var viewer = dialog.querySelector("[data-viewer]").viewer;
    document.querySelectorAll("[data-viewer-open]").forEach(function (trigger) {
      trigger.addEventListener("click", function () {
        dialog.showModal();
        viewer.show(Number(trigger.dataset.viewerOpen));
        viewer.root.focus();
      });
    });
    dialog.addEventListener("click", function (event) {
      if (event.target === dialog) { dialog.close(); }
    });
  });
})();
