"""What faqbot changes in, and plugs into, Chainlit: the adapter's Chainlit-facing parts.

`chainlit_app.py` is the face (the `@cl` handlers and how answers are rendered); this package
holds the rest, so that `faqbot/` never imports Chainlit (faqbot/store/chainlit_layer.py aside):

- `patches`: every runtime change to Chainlit's own code, each with its reason and when it can go,
  and the check that the installed Chainlit is the version they were written for;
- `wiring`: faqbot's HTTP API, /admin, gates, session check and CORS on Chainlit's server;
- `sign_in`: Chainlit's sign-in callbacks and `ChainlitSignIn` (who is signed in);
- `sessions`: client keys and the end of disconnected sessions.
"""
