"""The answer pipeline: a question in, a stream of typed events out (the same for every face).

bot        FaqBot: route, ground, stream; offline retrieval when there is no LLM or it fails
events     the typed events of one answer and the TurnResult that `Done` carries
router     LLM router: one function-calling round picks the category, rewrites follow-ups
answerer   grounded answers from the routed category's top-k entries; source attribution
offline    retrieval answers (the default and the fallback): answer, suggest or refuse
breaker    circuit breaker that skips a failing LLM for a cool-down
contact    the support contact offered with refusals
render     Markdown the chat faces show: welcome, route step, footer
coalesce   fewer, larger Token events for the chat UI
factory    build_bot: settings, FAQ files and the concrete LLM wired together
"""
