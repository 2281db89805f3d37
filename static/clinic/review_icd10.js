/* The review form's per-eye ICD-10 codes follow the picked conclusions (their default codes)
 * until the doctor types their own; the server fills in the same defaults when left empty. */
(function () {
  "use strict";
  var root = document.getElementById("eye-review");
  if (!root) { return; }
  var defaults = JSON.parse(root.dataset.icd10Defaults || "{}");
  ["od", "os"].forEach(function (eye) {
    var input = document.getElementById("id_diagnosis_codes_" + eye);
    var boxes = root.querySelectorAll("input[name=conclusion_codes_" + eye + "]");
    if (!input) { return; }
    var filled = input.value;
    function suggested() {
      var codes = [];
      boxes.forEach(function (box) {
        if (!box.checked) { return; }
        (defaults[box.value] || []).forEach(function (code) {
          if (codes.indexOf(code) === -1) { codes.push(code); }
        });
      });
      return codes.join(", ");
    }
    boxes.forEach(function (box) {
      box.addEventListener("change", function () {
        // Only what this script filled in is replaced: the doctor's own codes stay.
        if (input.value.trim() === "" || input.value === filled) {
          filled = suggested();
          input.value = filled;
        }
      });
    });
  });
})();
