/* Gazette: the 많이 본 뉴스 (most viewed) box, rendered into every element marked data-gazette-most-viewed.
 *
 *   <div data-gazette-most-viewed data-category="politics" data-window="24h" data-limit="10" data-lang="ko"></div>
 *   <script src="https://NEWS.EXAMPLE/widgets/most-viewed.js" async></script>
 *
 * The list comes from /widgets/most-viewed.json on the script's own origin (CORS: the page's origin must be in
 * [widgets] origins). Text goes in with textContent only; links are the signed /r/ links the JSON gives, so a
 * click counts. Theme it with CSS custom properties on the element or above: --gz-accent, --gz-text, --gz-title,
 * --gz-line, --gz-muted, --gz-bg, --gz-font, --gz-size. The element's data-gazette-state says loading | ready |
 * error. No dependencies, no build step. */
(function () {
  "use strict";
  var me = document.currentScript;
  var origin = new URL(me && me.src ? me.src : "/", location.href).origin;
  var css = "/*GAZETTE_CSS*/";
  var made = 0;

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  function addStyle() {
    if (document.getElementById("gazette-most-viewed-style")) return;
    var style = el("style");
    style.id = "gazette-most-viewed-style";
    style.textContent = css;
    var head = document.head || document.documentElement;
    head.insertBefore(style, head.firstChild);  // first, so that the page's own rules win at equal specificity
  }

  function isWebLink(href) {
    try {
      var protocol = new URL(href, origin).protocol;
      return protocol === "https:" || protocol === "http:";
    } catch (e) {
      return false;
    }
  }

  function render(box, data) {
    var id = "gazette-most-viewed-" + (++made);
    var section = el("section", "gz-mv");
    section.setAttribute("aria-labelledby", id);
    var title = el("h2", "gz-mv__title", data.title);
    title.id = id;
    section.appendChild(title);
    var items = Array.isArray(data.items) ? data.items : [];
    var list = el("ol", "gz-mv__list");
    list.setAttribute("role", "list");
    items.forEach(function (item, i) {
      if (!item || !isWebLink(item.url)) return;
      var link = el("a", "gz-mv__link");
      link.href = String(item.url);
      var rank = el("span", "gz-mv__rank", item.rank || i + 1);
      rank.setAttribute("aria-hidden", "true");
      link.appendChild(rank);
      link.appendChild(el("span", "gz-mv__headline", item.title));
      var row = el("li", "gz-mv__item");
      row.appendChild(link);
      list.appendChild(row);
    });
    section.appendChild(list.childNodes.length ? list : el("p", "gz-mv__empty", data.empty || ""));
    box.replaceChildren(section);
  }

  function load(box) {
    if (box.getAttribute("data-gazette-state")) return;  // once per element, even if the script is included twice
    box.setAttribute("data-gazette-state", "loading");
    var query = new URLSearchParams();
    ["category", "window", "limit", "lang"].forEach(function (name) {
      var value = box.getAttribute("data-" + name);
      if (value) query.set(name, value);
    });
    fetch(origin + "/widgets/most-viewed.json?" + query, {mode: "cors", credentials: "omit"})
      .then(function (answer) {
        if (!answer.ok) throw new Error("HTTP " + answer.status);
        return answer.json();
      })
      .then(function (data) {
        render(box, data);
        box.setAttribute("data-gazette-state", "ready");
      })
      .catch(function () {
        box.setAttribute("data-gazette-state", "error");  // the page's own fallback content stays
      });
  }

  function start() {
    addStyle();
    Array.prototype.forEach.call(document.querySelectorAll("[data-gazette-most-viewed]"), load);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
