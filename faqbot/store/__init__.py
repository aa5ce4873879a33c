"""Persistence: conversations, turns and feedback in SQLite (default) or PostgreSQL.

Modules: `schema` (the tables), `database` (URL from settings, engine, schema upgrades), `turns`
(faqbot's own reads and writes). `chainlit_layer` is the one module of the `faqbot` package that
imports Chainlit (its data layer, subclassed); only the Chainlit adapter (`chainlit_app.py`,
`faqbot_chainlit/`) imports it (tests/test_store_schema.py checks that nothing else in faqbot
imports chainlit).

Why Chainlit's `SQLAlchemyDataLayer` and not its `ChainlitDataLayer`: the latter speaks asyncpg
to PostgreSQL only (and expects Chainlit's Prisma-made schema), while the SQLAlchemy layer runs
the same statements through SQLAlchemy's async engine, so one code path serves the default
SQLite file (aiosqlite, nothing to install or run) and PostgreSQL (asyncpg). It ships no DDL:
faqbot creates and upgrades the tables itself (`database.Database.ensure_schema`).

Who writes what
---------------
- Chat UI and widget (a Chainlit session): Chainlit writes `threads` (name = first question,
  `userId`/`userIdentifier` when signed in, `metadata.client_type` "webapp" | "copilot"), the
  user's `steps` (type `user_message`, `output` = the question), the router step (type `tool`,
  name `Router`, `output` = the route shown), the answer (type `assistant_message`, `output` =
  the answer as shown, with its Sources footer), and `feedbacks` (the UI's thumbs). faqbot puts
  its turn metadata in the answer step's `metadata` and writes one `faqbot_turns` row per turn,
  after Chainlit's writes of that turn have committed (so a finished turn is on disk before the
  browser sees the end of the turn). Anonymous sessions are stored too (`userId` NULL): Chainlit
  2.12 persists every thread once a data layer is set; only the history sidebar and resume need
  sign-in.
- HTTP API (`/api/chat`, `/api/chat/stream`): faqbot writes the same rows itself: one thread per
  conversation (`threads.id` = `conversation_id`, `metadata` = `{"face": "api"}`), per turn a
  `user_message` step, a `Router` step and an `assistant_message` step whose `output` is the
  plain answer, and the `faqbot_turns` row, in one transaction before the answer is returned.
- `feedbacks`: every path (Chainlit's `PUT /feedback`, `POST /api/feedback`) under
  faqbot.store.feedback's rules: `forId` = the answer (`faqbot_turns.id`; the UI's run id is
  mapped to it), one row per answer per client (id = uuid5(answer, client)), a second rating by
  the same client replaces the first.

Keys (for reports and analytics)
--------------------------------
`faqbot_turns` (one row per finished turn, every face; `id` = the answer step's id):
  id, thread_id, question_step_id, created_at (ISO UTC text, `...Z`), face (ui | widget | api),
  user_identifier (NULL when anonymous), question (as asked), standalone_question (the router's
  rewrite of a follow-up), answer (plain text), category (NULL = not covered), confidence (0..1),
  routed_by (llm | retrieval | cache | suggestion: a "Did you mean" button was clicked),
  outcome (answered | suggested | refused), fallback (bool: the LLM failed, retrieval answered),
  fallback_reason, mode (llm | offline), cached (bool), entry_ids (JSON list of the source entry
  ids, best first), suggestion_ids (JSON list), faq_version (the knowledge base's content hash),
  latency_ms, prompt_tokens, completion_tokens, cost_usd.
Answer step `metadata["faqbot"]`: the same values under the same names (lists as JSON lists),
  plus `turn_id`; without question, standalone_question, answer, face, created_at, user.
Router step `metadata["faqbot"]`: category, confidence, routed_by, standalone_question.
`feedbacks`: id, forId (= faqbot_turns.id), threadId, value (1 = thumbs up, 0 = thumbs down:
  Chainlit's scale; the API's +1/-1 are stored as 1/0), comment. Join on forId for the entry ids,
  confidence and FAQ version of the rated answer.
`faqbot_meta`: key/value; `schema_version` = faqbot.store.schema.SCHEMA_VERSION.
"""
