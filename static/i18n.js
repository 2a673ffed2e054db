// eidgate pages: the messages the scripts show, in the page's language. The server renders
// them from its message catalogues into <script type="application/json" id="i18n">;
// `{name}` in a message is filled in from `args`.
"use strict";

(function () {
  let messages = {};
  const source = document.getElementById("i18n");
  if (source) {
    try { messages = JSON.parse(source.textContent); } catch (e) { messages = {}; }
  }
  window.eidgateT = function (id, args) {
    let text = Object.prototype.hasOwnProperty.call(messages, id) ? messages[id] : id;
    if (args) {
      for (const key of Object.keys(args)) text = text.split("{" + key + "}").join(String(args[key]));
    }
    return text;
  };
  window.eidgateLang = document.documentElement.lang || "en";
})();
