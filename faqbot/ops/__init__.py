"""Running and operating faqbot: the command line and what its commands do.

cli         `python -m faqbot check|ask|eval|serve|report|delete-user|retention|hash-password`
serve       `serve`: run the Chainlit app with the documented settings
deployment  `check --deployment`: settings that are unsafe on a public deployment
reload      keep the serving bot in step with the FAQ folder (watchfiles)
evaluation  `eval FILE.yaml`: routing, top-1 entry and answer/suggest/refuse quality
"""
