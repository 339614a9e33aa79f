// Enhancements only: the page works without this file.
(function () {
  "use strict";
  // Copy buttons (hidden without JavaScript).
  document.querySelectorAll("button.copy").forEach(function (b) {
    b.hidden = false;
    b.addEventListener("click", function () {
      navigator.clipboard.writeText(b.dataset.copy).then(function () { b.textContent = b.dataset.copied; });
    });
  });
  // Live status (without JavaScript a meta refresh does it): poll, and
  // reload when the status changes.
  var state = document.getElementById("state");
  if (!state || document.getElementById("result")) { return; }
  var status = state.dataset.paymentStatus;
  setInterval(function () {
    fetch(state.dataset.statusUrl, { cache: "no-store" }).then(function (r) { return r.json(); }).then(function (j) {
      if (j.status !== status) { location.reload(); }
    }).catch(function () {});
  }, 2000);
})();
