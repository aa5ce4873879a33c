"""The web face of faqbot: the JSON/SSE API and what the served pages need.

- app.py: `create_api` builds the API application (CORS, schema, routes, error handlers)
- context.py: what every route needs (bot getter, limiter, settings, conversations)
- schemas.py: request/response models, the ERRORS table, the question limits
- chat.py: POST /chat and POST /chat/stream (server-sent events)
- faq.py: GET /faq/{entry_id} (JSON, or an HTML page for browsers; pages.py renders it)
- health.py: GET /health and GET /metrics
- errors.py: every error as an ErrorResponse
- limits.py: `RequestGate`, counting every POST and capping bodies before any route reads them
- dispatch.py: `PrefixDispatcher`, serving /api ahead of Chainlit's routes
- security.py: security headers, the websocket origin check, the client address
- airgap.py: no link to another host in Chainlit's page
"""
