// Small progressive enhancements; every page works without them.
(function () {
  "use strict";

  // Copy the payer link.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var input = document.querySelector(button.getAttribute("data-copy"));
    var status = button.closest(".payer").querySelector(".copied");
    input.select();
    var done = function () { status.textContent = "Copied. Paste it into a message or chat."; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(done, function () { document.execCommand("copy"); done(); });
    } else {
      document.execCommand("copy");
      done();
    }
  });

  // A submit button marked data-once can't send its form twice (the server dedupes anyway).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var confirmText = form.getAttribute("data-confirm");
    if (confirmText && !window.confirm(confirmText)) {
      event.preventDefault();
      return;
    }
    if (form.dataset.sent) {
      event.preventDefault();
      return;
    }
    if (form.querySelector("[data-once]")) {
      form.dataset.sent = "1";
      form.querySelectorAll("[data-once]").forEach(function (b) { b.setAttribute("aria-disabled", "true"); b.classList.add("busy"); });
    }
  });

  // The practice switcher submits on change.
  document.addEventListener("change", function (event) {
    if (event.target.matches("[data-autosubmit]")) event.target.form.submit();
    toggle();
  });

  // Show a field only when another has a given value: data-show-when="name=value" or "name!=value".
  function valueOf(name) {
    var checked = document.querySelector('input[name="' + name + '"]:checked');
    if (checked) return checked.value;
    var field = document.getElementById(name) || document.querySelector('[name="' + name + '"]:not([type=radio])');
    return field ? field.value : "";
  }
  function toggle() {
    document.querySelectorAll("[data-show-when]").forEach(function (element) {
      var rule = element.getAttribute("data-show-when");
      var negate = rule.indexOf("!=") !== -1;
      var parts = rule.split(negate ? "!=" : "=");
      var name = parts[0].replace(/^id_/, "");
      var matches = valueOf(name) === parts[1];
      var show = negate ? !matches : matches;
      var hasError = element.querySelector(".error");
      element.hidden = !(show || hasError);
    });
  }
  document.addEventListener("DOMContentLoaded", toggle);

  // Show the amount a link form will charge, read as the server reads it (paylinks/forms.py
  // AmountField): 12,50 and 12.50 are both 12.50; anything doubtful shows a dash.
  function amountOf(text) {
    text = text.trim();
    if (!/^[0-9]*([.,][0-9]{0,2})?$/.test(text) || !/[0-9]/.test(text)) return null;
    var parts = text.replace(",", ".").split(".");
    var whole = parts[0].replace(/^0+(?=[0-9])/, "") || "0";
    var cents = ((parts[1] || "") + "00").slice(0, 2);
    if (whole === "0" && cents === "00") return null;
    return whole + "." + cents;
  }
  // The amount as the page's language writes it (€12.50, 12,50 €), in the sentence the server
  // translated: data-sentence="The link will ask for {amount}".
  function moneyOf(amount, currency) {
    try {
      return new Intl.NumberFormat(document.documentElement.lang || undefined, {
        style: "currency",
        currency: currency
      }).format(Number(amount));
    } catch (error) {
      return amount + " " + currency;  // an unknown language tag or currency: still readable
    }
  }
  function showCharge() {
    document.querySelectorAll("[data-charge]").forEach(function (line) {
      var output = line.querySelector("output");
      var input = document.getElementById(output.getAttribute("for"));
      var sentence = line.getAttribute("data-sentence");
      if (!input || !sentence) return;
      var amount = amountOf(input.value);
      var shown = amount ? moneyOf(amount, line.getAttribute("data-currency")) : "—";
      output.textContent = sentence.split("{amount}").join(shown);
    });
  }
  document.addEventListener("input", function (event) {
    if (event.target.name === "amount") showCharge();
  });
  document.addEventListener("DOMContentLoaded", showCharge);

  // After a failed submit, start from what went wrong: the form's error summary takes the focus
  // (from autofocus too), and is scrolled into view.
  function focusErrorSummary(root) {
    var summary = (root || document).querySelector("[data-error-summary]");
    if (summary) summary.focus();
  }
  document.addEventListener("DOMContentLoaded", function () { focusErrorSummary(document); });
  document.addEventListener("htmx:afterSettle", function (event) { focusErrorSummary(event.target); });
})();
