// Starts Swagger UI on the committed contract this service serves (kept out of the page, whose
// Content-Security-Policy allows scripts from this origin only).
window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
