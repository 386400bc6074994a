/* Gazette's breaking-news alerts button (docs/push.md). Put where the button goes:
 *   <div id="gazette-push" data-lang="ko" data-sw="/gazette-sw.js"></div>
 *   <script src="https://GAZETTE/push/subscribe.js" defer></script>
 * A click asks the browser's permission, registers the service worker (data-sw: a copy of /push/sw.js on this
 * site), subscribes with Gazette's VAPID key and posts the subscription with the sections ticked. Nothing happens
 * before the click: no permission prompt on page load. */
(function () {
  "use strict";
  const GAZETTE = __GAZETTE__;  /* {base, key, categories: [[slug, name]], words: {...}}, filled in by Gazette */

  function b64ToBytes(value) {
    const padded = (value + "===".slice((value.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
    return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  }

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => node.setAttribute(k, v));
    if (text) node.textContent = text;  /* text, never HTML */
    return node;
  }

  async function post(path, body) {
    const response = await fetch(GAZETTE.base + path, {
      method: "POST", mode: "cors", credentials: "omit",
      headers: {"Content-Type": "application/json"}, body: JSON.stringify(body),
    });
    if (!response.ok) throw new Error("Gazette answered " + response.status);
  }

  function mount(box) {
    const lang = box.dataset.lang === "en" ? "en" : "ko";
    const w = GAZETTE.words[lang];
    const swUrl = box.dataset.sw || GAZETTE.base + "/push/sw.js";
    const form = el("form", {"class": "gazette-push"});
    const sections = el("fieldset", {}, "");
    sections.appendChild(el("legend", {}, w.sections));
    GAZETTE.categories.forEach(([slug, name]) => {
      const label = el("label");
      label.appendChild(el("input", {type: "checkbox", name: "categories", value: slug}));
      label.appendChild(document.createTextNode(" " + (name || slug) + " "));
      sections.appendChild(label);
    });
    const ads = el("label");
    ads.appendChild(el("input", {type: "checkbox", name: "ads"}));
    ads.appendChild(document.createTextNode(" " + w.ads));
    const button = el("button", {type: "submit"}, w.button);
    const off = el("button", {type: "button", hidden: ""}, w.off);
    const status = el("p", {role: "status", "aria-live": "polite"});
    form.append(sections, ads, button, off, status);
    box.replaceChildren(form);

    if (!("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) {
      button.disabled = true;
      status.textContent = w.unsupported;
      return;
    }
    navigator.serviceWorker.getRegistration(swUrl).then(async (registration) => {
      if (registration && await registration.pushManager.getSubscription()) off.hidden = false;
    });

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      button.disabled = true;
      try {
        const permission = await Notification.requestPermission();
        if (permission !== "granted") {
          status.textContent = w.denied;
          return;
        }
        await navigator.serviceWorker.register(swUrl);
        const registration = await navigator.serviceWorker.ready;
        box.dataset.scope = registration.scope;
        const subscription = await registration.pushManager.subscribe({
          userVisibleOnly: true, applicationServerKey: b64ToBytes(GAZETTE.key),
        });
        const chosen = Array.from(form.querySelectorAll("input[name=categories]:checked"), (i) => i.value);
        await post("/push/subscriptions", {
          subscription: subscription.toJSON(), categories: chosen, lang: lang,
          zone: Intl.DateTimeFormat().resolvedOptions().timeZone || null, ads: form.elements.ads.checked,
        });
        status.textContent = w.done;
        off.hidden = false;
      } catch (error) {
        status.textContent = w.failed;
        box.dataset.error = String(error && error.message || error).slice(0, 200);
      } finally {
        button.disabled = false;
      }
    });

    off.addEventListener("click", async () => {
      const registration = await navigator.serviceWorker.getRegistration(swUrl);
      const subscription = registration && await registration.pushManager.getSubscription();
      if (subscription) {
        await post("/push/subscriptions/unsubscribe", {endpoint: subscription.endpoint}).catch(() => undefined);
        await subscription.unsubscribe();
      }
      off.hidden = true;
      status.textContent = w.off_done;
    });
  }

  function start() {
    document.querySelectorAll("#gazette-push, [data-gazette-push]").forEach(mount);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
