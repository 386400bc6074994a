/* Gazette's service worker for breaking-news alerts by Web Push (docs/push.md).
 * Served at /push/sw.js; copy it to the newsroom site (a service worker must come from the page's own origin).
 * A push carries JSON {title, body, url, tag, lang}: shown as a notification's text (never as HTML); a tap opens
 * the url; the "unsubscribe" action ends the subscription here and at Gazette. */
"use strict";
const GAZETTE = __GAZETTE__;  /* {base, words: {ko: {...}, en: {...}}}, filled in by Gazette */

function words(lang) {
  return GAZETTE.words[lang] || GAZETTE.words.ko;
}

function safeUrl(url) {
  try {
    const parsed = new URL(url, GAZETTE.base);
    return (parsed.protocol === "https:" || parsed.protocol === "http:") ? parsed.href : GAZETTE.base + "/";
  } catch (e) {
    return GAZETTE.base + "/";
  }
}

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("push", (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch (e) {
    data = {};
  }
  const w = words(data.lang);
  const title = String(data.title || w.title).slice(0, 200);
  event.waitUntil(self.registration.showNotification(title, {
    body: String(data.body || "").slice(0, 500),
    tag: String(data.tag || "gazette-alert"),
    lang: data.lang === "en" ? "en" : "ko",
    data: {url: safeUrl(data.url || GAZETTE.base + "/")},
    actions: [{action: "unsubscribe", title: w.unsubscribe}],
  }));
});

async function unsubscribe() {
  const subscription = await self.registration.pushManager.getSubscription();
  if (!subscription) return;
  await fetch(GAZETTE.base + "/push/subscriptions/unsubscribe", {
    method: "POST", mode: "cors", credentials: "omit",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify({endpoint: subscription.endpoint}),
  }).catch(() => undefined);
  await subscription.unsubscribe();
}

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  if (event.action === "unsubscribe") {
    event.waitUntil(unsubscribe());
    return;
  }
  event.waitUntil(self.clients.openWindow(event.notification.data.url));
});

self.addEventListener("message", (event) => {
  if (event.data === "gazette-unsubscribe") event.waitUntil(unsubscribe());
});
