// HeliosDB console: copy buttons and confirmations. Everything works
// without this file; it only saves a click or a page.
"use strict";

document.addEventListener("click", function (e) {
  var b = e.target.closest("button[data-copy]");
  if (!b) return;
  var el = document.getElementById(b.getAttribute("data-copy"));
  if (!el) return;
  var text = el.textContent;
  var label = b.textContent;
  function done(msg) {
    b.textContent = msg;
    setTimeout(function () { b.textContent = label; }, 1600);
  }
  function fallback() {
    var r = document.createRange();
    r.selectNodeContents(el);
    var s = window.getSelection();
    s.removeAllRanges();
    s.addRange(r);
    done(document.execCommand && document.execCommand("copy") ? "Copied" : "Press Ctrl+C");
  }
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(function () { done("Copied"); }, fallback);
  } else {
    fallback();
  }
});

// A form with data-confirm asks first; confirmed, it says so to the server,
// which otherwise shows its own confirmation page.
document.addEventListener("submit", function (e) {
  var f = e.target;
  var msg = f.getAttribute("data-confirm");
  if (!msg) return;
  if (!window.confirm(msg)) {
    e.preventDefault();
    return;
  }
  var i = document.createElement("input");
  i.type = "hidden";
  i.name = "confirmed";
  i.value = "yes";
  f.appendChild(i);
});
