/* Guichet public pages: small improvements on pages that already work without JavaScript.
 *
 * - [data-countdown]: a hold's "held for another 10 minutes" becomes a live m:ss countdown.
 * - [data-print]: the printable tickets' button opens the browser's print dialog.
 * - form[data-buy]: the running total follows the quantities as they change (the server
 *   computes the same total behind the "Update the total" button), and a page that comes
 *   back with errors puts the focus on their summary.
 * Loaded with "defer" from base.html; the CSP allows scripts from 'self' only.
 */
(function () {
  "use strict";

  function countdown(element) {
    var ends = Date.parse(element.dataset.countdown);
    var template = element.dataset.countdownText;
    function tick() {
      var left = Math.max(0, Math.round((ends - Date.now()) / 1000));
      if (left === 0) {
        element.textContent = element.dataset.countdownOver;
        return;
      }
      var seconds = left % 60;
      var clock = Math.floor(left / 60) + ":" + (seconds < 10 ? "0" : "") + seconds;
      element.textContent = template.replace("{time}", clock);
      setTimeout(tick, 1000);
    }
    if (!isNaN(ends) && template) {
      tick();
    }
  }

  function printButton(button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      window.print();
    });
  }

  function buyForm(form) {
    var total = document.getElementById("running-total");
    var selects = form.querySelectorAll("select[data-price]");
    if (!total || !selects.length) {
      return;
    }
    var locale = document.documentElement.lang || "en";
    var currency = total.dataset.currency;
    var digits = Number(total.dataset.digits || "2");
    var format = new Intl.NumberFormat(locale, { style: "currency", currency: currency });
    function money(cents) {
      return format.format(cents / Math.pow(10, digits));
    }
    function update() {
      var count = 0;
      var tickets = 0;
      var fees = 0;
      selects.forEach(function (select) {
        var quantity = Number(select.value) || 0;
        count += quantity;
        tickets += quantity * Number(select.dataset.price);
        fees += quantity * Number(select.dataset.fee);
      });
      total.querySelector("[data-part=tickets]").textContent = money(tickets);
      total.querySelector("[data-part=fee]").textContent = money(fees);
      total.querySelector("[data-part=total]").textContent = money(tickets + fees);
      total.dataset.count = String(count);
    }
    selects.forEach(function (select) {
      select.addEventListener("change", update);
    });
    // The server's "Update the total" button is for pages without JavaScript.
    form.querySelectorAll("[data-total-button]").forEach(function (button) {
      button.hidden = true;
    });
    update();
  }

  // After the browser's own jump to the page's fragment (which can move the focus), so
  // that keyboard and screen reader users start from the list of what to fix.
  function focusErrors() {
    var summary = document.querySelector(".error-summary");
    if (summary) {
      summary.focus({ preventScroll: true });
      summary.scrollIntoView({ block: "start" });
    }
  }

  document.querySelectorAll("[data-countdown]").forEach(countdown);
  document.querySelectorAll("[data-print]").forEach(printButton);
  document.querySelectorAll("form[data-buy]").forEach(buyForm);
  focusErrors();
  window.addEventListener("load", focusErrors);
})();
