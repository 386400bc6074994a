/* Starts Swagger UI on /api/docs (served by feeds/http/docs.py). A file of ours rather than an inline script, so
   that the page's Content-Security-Policy lets scripts come from this origin only. The page names the OpenAPI
   document and, for a console session, the CSRF header and token its changes need. */
"use strict";
(function () {
  var node = document.getElementById("swagger-ui");
  var csrfHeader = node.getAttribute("data-csrf-header");
  var csrfToken = node.getAttribute("data-csrf-token");
  var safe = { GET: true, HEAD: true, OPTIONS: true };
  window.ui = SwaggerUIBundle({
    url: node.getAttribute("data-openapi-url"),
    domNode: node,
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: "BaseLayout",
    validatorUrl: null, // the default sends the document to a public validator and shows its badge from there
    persistAuthorization: false, // an admin token pasted into "Authorize" is not kept in localStorage
    requestInterceptor: function (request) {
      // "Try it out" as a logged-in console user: the session cookie goes along (same origin), the CSRF token
      // is added to changes here. With the admin token (Authorize) it is not needed, and harmless.
      if (csrfHeader && csrfToken && !safe[(request.method || "GET").toUpperCase()]) {
        request.headers[csrfHeader] = csrfToken;
      }
      return request;
    }
  });
})();
