/* Patient registration: a valid resident ID number fills the date of birth and sex left empty.
 * The service fills and checks them again (patients.services.patient_clean_fields). */
(function () {
  "use strict";
  var id = document.getElementById("id_national_id");
  var birth = document.getElementById("id_date_of_birth");
  if (!id || !birth) { return; }
  var WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  var CHECK = "10X98765432";

  function parse(raw) {
    var value = raw.trim().toUpperCase();
    if (!/^\d{17}[\dX]$/.test(value)) { return null; }
    var total = 0;
    for (var i = 0; i < 17; i += 1) { total += Number(value.charAt(i)) * WEIGHTS[i]; }
    if (CHECK.charAt(total % 11) !== value.charAt(17)) { return null; }
    var year = Number(value.slice(6, 10));
    var month = Number(value.slice(10, 12));
    var day = Number(value.slice(12, 14));
    var date = new Date(Date.UTC(year, month - 1, day));
    if (date.getUTCFullYear() !== year || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day) {
      return null;
    }
    return {
      birth: value.slice(6, 10) + "-" + value.slice(10, 12) + "-" + value.slice(12, 14),
      sex: Number(value.charAt(16)) % 2 ? "male" : "female"
    };
  }

  function fill() {
    var facts = parse(id.value);
    if (!facts) { return; }
    if (!birth.value) { birth.value = facts.birth; }
    var radios = document.querySelectorAll("input[name=sex]");
    var chosen = Array.prototype.some.call(radios, function (radio) { return radio.checked; });
    if (!chosen) {
      Array.prototype.forEach.call(radios, function (radio) { radio.checked = radio.value === facts.sex; });
    }
  }

  id.addEventListener("input", fill);
  id.addEventListener("change", fill);
})();
