// The API docs page: Swagger UI on this server's OpenAPI description, calling the API with the
// signed-in session. Unsafe methods carry the CSRF cookie's value as X-CSRFToken, as Dash does.
(function () {
  "use strict";
  function csrfToken() {
    var match = document.cookie.match(/(?:^|;\s*)_csrf_token=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }
  var root = document.getElementById("swagger-ui");
  window.SwaggerUIBundle({
    url: root.getAttribute("data-spec-url"),
    domNode: root,
    deepLinking: true,
    tryItOutEnabled: false,
    withCredentials: true,
    requestInterceptor: function (request) {
      if (!/^(GET|HEAD|OPTIONS)$/i.test(request.method || "GET")) {
        request.headers["X-CSRFToken"] = csrfToken();
      }
      return request;
    }
  });
})();
