// Payment notices (templates/paylinks/_notices.html): keep keyboard focus in a sensible place
// when a notice is dismissed. Dismissing works without this; focus would fall to the page's top.
(function () {
  "use strict";

  document.addEventListener("htmx:beforeSwap", function (event) {
    var form = event.detail.requestConfig && event.detail.requestConfig.elt;
    if (!form || !form.matches || !form.matches("[data-dismiss-notice]")) return;
    var item = form.closest("li");
    if (!item || !item.contains(document.activeElement)) return;
    var neighbour = item.nextElementSibling || item.previousElementSibling;
    window.setTimeout(function () {
      var button = neighbour && neighbour.isConnected && neighbour.querySelector(".dismiss");
      if (button) {
        button.focus();
        return;
      }
      var main = document.getElementById("main");
      if (!main) return;
      main.setAttribute("tabindex", "-1");
      main.focus();
    }, 0);
  });
})();
